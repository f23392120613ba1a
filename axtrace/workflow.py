"""The standard response to one alert at one site: the steps of ``respond-to-alert``.

The flow body is a loop over the ledger: read where the alert stands, do the next step, repeat.
Waits for people suspend the run (the process exits); on resume Prefect runs the flow again
from the top, the loop reads the ledger and arrives at the same wait, whose pause key
(``<phase>-<wait_seq>``) Prefect has already seen, so it returns the answer given. Each answer
is taken in one transaction that also advances ``wait_seq``, so an answer is never taken twice.

Deadlines are ours: the sweeper resumes a waiting run with an empty answer when
:func:`wake_at` says so (an acknowledge deadline, a resolve deadline, a reminder, the end of
a maintenance window), and :func:`deadline_step` decides what that wake does: escalate, mark
the alert ignored (no one acknowledged) or overdue (no one resolved), remind the current
level, or release an alert a maintenance window suppressed (:mod:`axtrace.maintenance`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, Field, create_model
from sqlmodel import Session

from axtrace import maintenance, oncall, outbound, ownership
from axtrace.events import emit_step
from axtrace.ledger import repo
from axtrace.ledger.models import (
    ACK_DEADLINE_PASSED,
    HUMAN_OUTCOMES,
    RESOLVE_DEADLINE_PASSED,
    Alert,
    AlertCreate,
    Outcome,
    Status,
    Step,
    utcnow,
)
from axtrace.ledger.session import in_transaction, ledger_session
from axtrace.outbound import Notification
from axtrace.text import markdown_link, markdown_text, printable
from axtrace.version import workflow_version

if TYPE_CHECKING:
    from axtrace_blocks import OwnershipPolicy

FLOW_NAME = "respond-to-alert"
FLOW_ENTRYPOINT = "flows/respond.py:respond_to_alert"
BACKSTOP = timedelta(days=30)
"""Prefect fails a suspended run after this; AxTrace's own deadlines are far shorter."""

logger = logging.getLogger("axtrace.workflow")


class Phase(StrEnum):
    ASSIGN = "assign"
    SOURCE_RESOLVE = "source_resolve"
    SUPPRESSED = "suppressed"
    NOTIFY = "notify"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    CLOSE = "close"
    DONE = "done"


def decide(alert: Alert) -> Phase:
    """What the run must do next, from where the alert stands in the ledger (pure)."""
    if alert.status == Status.CLOSED:
        return Phase.DONE
    if alert.status == Status.RESOLVED:
        return Phase.CLOSE
    if alert.level == 0:
        return Phase.ASSIGN
    if alert.source_resolved_at is not None:
        return Phase.SOURCE_RESOLVE
    if alert.suppressed_until is not None:
        return Phase.SUPPRESSED
    if alert.notified_level < alert.level:
        return Phase.NOTIFY
    if alert.status == Status.OPEN:
        return Phase.ACKNOWLEDGE
    return Phase.RESOLVE


def pause_key(alert: Alert, phase: Phase) -> str:
    return f"{phase.value}-{alert.wait_seq}"


def wake_at(alert: Alert) -> datetime | None:
    """When the alert's waiting run must be woken without an answer (pure; None: never).

    An open alert: at its acknowledge deadline, or while a maintenance window suppresses it
    (no deadline runs then), at the window's end. An acknowledged one: at its resolve deadline
    until it is marked overdue, or at its next reminder, whichever comes first. Ignored,
    resolved and closed alerts have nothing to wake for. :func:`axtrace.ledger.repo.due_waits`
    is the same rule in SQL.
    """
    if alert.status == Status.OPEN:
        return alert.ack_deadline if alert.suppressed_until is None else alert.suppressed_until
    if alert.status != Status.ACKNOWLEDGED:
        return None
    resolve = alert.resolve_deadline if alert.overdue_at is None else None
    return min((d for d in (resolve, alert.remind_at) if d is not None), default=None)


def deadline_step(alert: Alert, now: datetime) -> Step | None:
    """What a wake without an answer does at ``now`` (pure; None: nothing is due yet).

    Past the acknowledge deadline of an open alert: escalate, or at the last level mark it
    ignored. Past the resolve deadline of an acknowledged one: escalate (the next level gets a
    fresh resolve window), or at the last level mark it overdue, once. Otherwise, past its
    reminder time: remind the current level. A deadline comes before a reminder. Past the end
    of the maintenance window that suppressed an open alert: release it.
    """
    pinned = cast(dict[str, Any], alert.policy)
    last = alert.level >= ownership.levels(pinned)
    if alert.status == Status.OPEN and alert.suppressed_until is not None:
        return Step.RELEASED if now >= alert.suppressed_until else None
    if alert.status == Status.OPEN:
        if alert.ack_deadline is None or now < alert.ack_deadline:
            return None
        return Step.IGNORED if last else Step.ESCALATED
    if alert.status != Status.ACKNOWLEDGED:
        return None
    deadline = alert.resolve_deadline
    if alert.overdue_at is None and deadline is not None and now >= deadline:
        return Step.OVERDUE if last else Step.ESCALATED
    if alert.remind_at is not None and now >= alert.remind_at:
        return Step.REMINDED
    return None


def next_reminder(alert: Alert, now: datetime) -> datetime | None:
    """When the alert's current level is reminded next, counted from ``now`` (pure)."""
    every = ownership.remind_every(cast(dict[str, Any], alert.policy), alert.level)
    return None if every is None else now + every


class ManualAlert(BaseModel):
    """Fields of an alert raised by hand from the Prefect UI's Run form."""

    title: str = "Alert raised by hand"
    severity: str = "high"
    detector: str | None = None
    evidence_url: str | None = None


class Answer(BaseModel):
    """What a person (or the sweeper, with no responder) gave a waiting run."""

    responder: str | None = None
    note: str = ""
    outcome: str | None = None
    answered_at: datetime | None = None


# --------------------------------------------------------------------------- forms


def answer_form(alert: Alert, phase: Phase) -> type[Any]:
    """The typed ``RunInput`` the Prefect UI renders for this wait: responders as a choice."""
    from prefect.input import RunInput

    pinned = cast(dict[str, Any], alert.policy)
    allowed = ownership.responders(pinned, alert.level, alert.on_call)
    # a choice list, made per wait (no one to choose: only the empty answer)
    choice: Any = Literal.__getitem__(tuple(allowed)) if allowed else type(None)
    fields: dict[str, Any] = {
        "responder": (choice | None, Field(default=None, description="Who you are.")),
        "note": (str, Field(default="", description="Optional note for the trace.")),
    }
    if phase is Phase.RESOLVE:
        outcomes: Any = Literal.__getitem__(HUMAN_OUTCOMES)
        fields["outcome"] = (
            outcomes | None,
            Field(default=None, description="How it ended (the reason code)."),
        )
    name = "Acknowledge" if phase is Phase.ACKNOWLEDGE else "Resolve"
    model = create_model(name, __base__=RunInput, **fields)
    model._description = _form_description(alert, phase, allowed)
    return model


def _form_description(alert: Alert, phase: Phase, allowed: list[str]) -> str:
    deadline = alert.ack_deadline if phase is Phase.ACKNOWLEDGE else alert.resolve_deadline
    due = deadline.strftime("%Y-%m-%d %H:%M:%S UTC") if deadline else "none"
    verb = "Acknowledge" if phase is Phase.ACKNOWLEDGE else "Resolve"
    return (
        f"### {verb} alert {alert.id} at {markdown_text(alert.site)}\n\n"
        f"**{markdown_text(alert.title)}** (severity {markdown_text(alert.severity)})\n\n"
        f"Level {alert.level}; who may answer: {_names(allowed)}. Deadline: {due}.\n"
    )


def _names(names: list[str]) -> str:
    """Responder names for Markdown: each one escaped (they are policy text, not markup)."""
    return ", ".join(markdown_text(name) for name in names)


# --------------------------------------------------------------------------- steps


def _record(
    session: Session, alert: Alert, step: Step, actor: str, detail: dict[str, Any],
) -> tuple[Alert, Step, str, dict[str, Any]]:
    assert alert.id is not None
    repo.append_step(session=session, alert_id=alert.id, step=step, actor=actor, detail=detail)
    session.add(alert)
    session.flush()
    return alert, step, actor, detail


def _commit_and_emit(
    work: Callable[[Session], list[tuple[Alert, Step, str, dict[str, Any]]]],
) -> list[tuple[Alert, Step, str, dict[str, Any]]]:
    """Write steps in one transaction, then emit one Prefect event per step written."""
    done = in_transaction(work)
    for alert, step, actor, detail in done:
        emit_step(step.value, alert, detail, actor)
    return done


def current_run_id() -> str | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else None


def record_alert(site: str, alert_id: int | None, manual: ManualAlert) -> int | None:
    """Attach this run to its alert, or record a manual alert; None if another run owns it."""
    run_id = current_run_id()

    def work(session: Session) -> list[tuple[Alert, Step, str, dict[str, Any]]]:
        if alert_id is None:
            existing = repo.find_by_run(session=session, flow_run_id=run_id) if run_id else None
            if existing is not None:
                return [(existing, Step.RECEIVED, "", {})]
            created = repo.create_alert(
                session=session, actor="prefect-ui", dispatch=False, flow_run_id=run_id,
                alert=AlertCreate(
                    site=site, key=f"manual-{run_id}", source="manual", title=manual.title,
                    severity=manual.severity, detector=manual.detector,
                    evidence_url=manual.evidence_url,
                ),
            )
            return [(created, Step.RECEIVED, "prefect-ui", {"source": "manual"})]
        alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if alert.site != site:
            raise ValueError(f"alert {alert_id} belongs to site '{alert.site}', not '{site}'")
        if alert.flow_run_id and run_id and alert.flow_run_id != run_id:
            return [(alert, Step.CLOSED, "", {"owner_run": alert.flow_run_id})]
        alert.flow_run_id = run_id
        session.add(alert)
        return [(alert, Step.RECEIVED, "", {})]

    (alert, marker, actor, detail), = in_transaction(work)
    if marker is Step.CLOSED:
        logger.warning("alert %s is handled by run %s; this run stops", alert.id, detail)
        return None
    if actor:
        emit_step(Step.RECEIVED.value, alert, detail, actor)
    _label_run(alert)
    return alert.id


def _label_run(alert: Alert) -> None:
    """Name the run ``<site>/<alert>`` and tag it with site and severity."""
    if not alert.flow_run_id:
        return
    from prefect import get_client
    from prefect.client.schemas.actions import FlowRunUpdate  # noqa: F401  (typing aid)
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context else None
    tags = set(run.tags) if run else set()
    wanted = tags | {f"site:{alert.site}", f"severity:{alert.severity}"}
    name = f"{alert.site}/{alert.id}"
    if run is not None and run.name == name and wanted == tags:
        return  # labelled by an earlier execution of this run: no API call on every resume
    tags = wanted
    with get_client(sync_client=True) as client:
        client.update_flow_run(
            flow_run_id=cast(Any, alert.flow_run_id), name=name,
            tags=sorted(tags),
        )


def load_alert(alert_id: int) -> Alert:
    with ledger_session() as session:
        return repo.get_alert(session=session, alert_id=alert_id)


def site_policy(site: str) -> OwnershipPolicy:
    """The site's policy block as it is now (``LookupError`` saying how to add one)."""
    from axtrace_blocks import OwnershipPolicy

    try:
        return cast(OwnershipPolicy, OwnershipPolicy.load(site))
    except ValueError as exc:
        raise LookupError(
            f"no ownership policy for site '{site}': add it to sites.yaml and run "
            "`axtrace sites apply`"
        ) from exc


def assign(alert_id: int) -> dict[str, Any]:
    """Pin the site's policy on the alert and give it to level 1 of the chain (or the first
    level after it with someone on call)."""
    policy = site_policy(load_alert(alert_id).site)
    pinned = ownership.snapshot(policy)
    version = workflow_version()
    start = oncall.plan(pinned, 1, utcnow(), calendars())  # read before the transaction

    def work(session: Session) -> list[tuple[Alert, Step, str, dict[str, Any]]]:
        alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if alert.level:
            return []
        now = utcnow()
        held = maintenance.hold(policy.maintenance, alert.received_at, now)
        alert.policy = pinned
        alert.policy_version = ownership.version(pinned)
        alert.workflow_version = version
        alert.owner = policy.owning_team
        alert.level = start.level
        _pin_on_call(alert, start)
        if held is None:
            _start_deadlines(alert, now, alert.received_at)
        assigned = _record(session, alert, Step.ASSIGNED, "axtrace", {
            "owner": alert.owner, "level": alert.level,
            "responders": ownership.responders(pinned, alert.level, alert.on_call),
            "policy_version": alert.policy_version, "workflow_version": version,
            "ack_deadline": alert.ack_deadline, "resolve_deadline": alert.resolve_deadline,
            **start.detail(),
        })
        return [assigned] if held is None else [assigned, _suppress(session, alert, held)]

    done = _commit_and_emit(work)
    return done[0][3] if done else {}


def _start_deadlines(alert: Alert, now: datetime, resolve_from: datetime) -> None:
    """Level 1's acknowledge deadline from ``now``, the resolve deadline from ``resolve_from``
    (receipt; or the release from a maintenance window)."""
    pinned = cast(dict[str, Any], alert.policy)
    alert.ack_deadline = now + ownership.ack_window(pinned, alert.level, alert.severity)
    alert.resolve_deadline = resolve_from + ownership.resolve_window(pinned, alert.severity)


def _suppress(
    session: Session, alert: Alert, held: maintenance.Hold,
) -> tuple[Alert, Step, str, dict[str, Any]]:
    """Hold the alert back until its maintenance window ends: no one paged, no deadline."""
    alert.suppressed_until = held.until
    return _record(session, alert, Step.SUPPRESSED, "axtrace", held.detail())


def _release(
    session: Session, alert: Alert, now: datetime, ahead: oncall.Plan | None = None,
) -> tuple[Alert, Step, str, dict[str, Any]]:
    """The window that suppressed the open alert has ended: the chain starts, deadlines fresh,
    with whoever is on call now (``ahead``, read before the transaction; else the names
    pinned at assignment)."""
    late = _late_by(alert.suppressed_until, now)
    until, alert.suppressed_until = alert.suppressed_until, None
    if ahead is not None and ahead.skipped_from == 1:
        alert.level = ahead.level
        _pin_on_call(alert, ahead)
    _start_deadlines(alert, now, now)
    pinned = cast(dict[str, Any], alert.policy)
    return _record(session, alert, Step.RELEASED, "axtrace", {
        "level": alert.level, "suppressed_until": until, "late_by_s": late,
        "ack_deadline": alert.ack_deadline, "resolve_deadline": alert.resolve_deadline,
        "responders": ownership.level_people(pinned, alert.level, alert.on_call),
        **(ahead.detail() if ahead is not None and ahead.skipped_from == 1 else {}),
    })


def calendars() -> oncall.Reader:
    """Reads on-call calendars as this process's settings allow (private addresses)."""
    from axtrace.settings import get_settings

    return oncall.reader(allow_private=get_settings().allow_private_webhooks)


def _pin_on_call(alert: Alert, plan: oncall.Plan) -> None:
    """Pin who is on call at the levels ``plan`` reached (a new dict: JSON is not tracked)."""
    if plan.uses_calendar:
        alert.on_call = {**(alert.on_call or {}), **plan.pinned()}


def notify(alert_id: int) -> dict[str, Any]:
    """Tell the responders of the current level, through the policy's notification block."""
    alert = load_alert(alert_id)
    level = alert.level
    sent = deliver(alert)

    def work(session: Session) -> list[tuple[Alert, Step, str, dict[str, Any]]]:
        row = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if row.notified_level >= level:
            return []
        row.notified_level = level
        return [_record(session, row, Step.NOTIFIED, "axtrace", sent | _deadline(row))]

    done = _commit_and_emit(work)
    return done[0][3] if done else {}


def deliver(alert: Alert) -> dict[str, Any]:
    """Send the notification for the alert's current level (I/O, before the transaction that
    records it, so a replay may send it again: at least once); what the step records."""
    pinned = cast(dict[str, Any], alert.policy)
    level = alert.level
    people = ownership.level_people(pinned, level, alert.on_call)
    channel = pinned.get("notification_block")
    message = notification(alert, people)
    sent = _send(message, _subject(alert, pinned), channel)
    return {
        "level": level, "level_name": ownership.level_name(pinned, level),
        "responders": people, "channel": channel or "ledger", **sent, "text": message.text,
        **({"template_error": message.error} if message.error else {}),
        **({"truncated": True} if message.truncated else {}),
    }


def _deadline(alert: Alert) -> dict[str, Any]:
    """The deadline the notified level must meet, for the step's detail."""
    if alert.status == Status.ACKNOWLEDGED:
        return {"resolve_deadline": alert.resolve_deadline}
    return {"ack_deadline": alert.ack_deadline}


def notification(alert: Alert, people: list[str]) -> Notification:
    """The text for the responders: the policy's template, or the standard text when it
    fails (rendered even without a notification block, so a broken template shows in the
    trace). Never raises: see :func:`axtrace.outbound.compose`."""
    pinned = alert.policy or {}
    acknowledged = alert.status == Status.ACKNOWLEDGED
    due = alert.resolve_deadline if acknowledged else alert.ack_deadline
    deadline = due.isoformat() if due else "none"
    return outbound.compose(
        pinned.get("notification_template"),
        {"alert": summary(alert) | {"id": alert.id, "title": alert.title,
                                    "severity": alert.severity},
         "level": alert.level, "responders": people, "deadline": deadline,
         "action": "resolve" if acknowledged else "acknowledge",
         "run_url": outbound.run_url(alert.flow_run_id)},
        allow_mass_mentions=bool(pinned.get("allow_mass_mentions", False)),
    )


def _subject(alert: Alert, pinned: dict[str, Any]) -> str:
    subject = printable(f"[AxTrace] {alert.site}: {alert.title} ({alert.severity})")
    return outbound.mentions_as_allowed(subject, bool(pinned.get("allow_mass_mentions")))


def _send(message: Notification, subject: str, channel: str | None) -> dict[str, Any]:
    """Send through the notification block ``channel``, retried as
    :func:`axtrace.outbound.deliver` does; what the step records (``delivered``, ``attempts``,
    ``error``). Never raises: a failed notification must not stop the escalation clock. Without
    a block nothing leaves AxTrace: the ledger step and the event are the notification."""
    from prefect.blocks.core import Block

    from axtrace.settings import get_settings

    if not channel:
        return {"delivered": False}
    try:
        block: Any = Block.load(channel)
    except Exception as exc:
        logger.warning("notification block %s could not be loaded: %s", channel, exc)
        return {"delivered": False, "attempts": 0,
                "error": f"cannot load {channel}: {type(exc).__name__}"}
    sent = outbound.deliver(block, body=message.body, subject=subject,
                            allow_private=get_settings().allow_private_webhooks)
    if not sent.delivered:
        logger.warning("notification through %s failed after %d attempt(s): %s", channel,
                       sent.attempts, sent.error)
    return {"delivered": sent.delivered, "attempts": sent.attempts,
            **({"error": sent.error} if sent.error else {})}


def take_answer(alert_id: int, phase: Phase, wait_seq: int, answer: Answer) -> Step | None:
    """Apply one answer (or an empty wake) in one transaction; return the step it recorded."""
    now = answer.answered_at or utcnow()
    reminder = _send_reminder(alert_id, wait_seq, answer, now)
    ahead = _on_call_ahead(alert_id, wait_seq, answer, now)

    def work(session: Session) -> list[tuple[Alert, Step, str, dict[str, Any]]]:
        alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if alert.wait_seq != wait_seq:
            return []  # already taken by an earlier execution of this run
        alert.wait_seq += 1
        session.add(alert)
        if answer.responder is None and alert.source_resolved_at is not None:
            return []  # woken because the source resolved it: the loop resolves next
        return [_apply(session, alert, phase, answer, now, reminder, ahead)]

    done = _commit_and_emit(work)
    return done[0][1] if done else None


def _send_reminder(
    alert_id: int, wait_seq: int, answer: Answer, now: datetime,
) -> dict[str, Any] | None:
    """For a wake that is a reminder, send it first (as :func:`notify` does); else None."""
    if answer.responder is not None:
        return None
    alert = load_alert(alert_id)
    if alert.wait_seq != wait_seq or alert.source_resolved_at is not None:
        return None
    return deliver(alert) if deadline_step(alert, now) is Step.REMINDED else None


def _on_call_ahead(
    alert_id: int, wait_seq: int, answer: Answer, now: datetime,
) -> oncall.Plan | None:
    """For a wake that escalates, who is on call from the next level on; for one that
    releases the alert from a maintenance window, from level 1 (calendars are read before
    the transaction that acts); else None."""
    if answer.responder is not None:
        return None
    alert = load_alert(alert_id)
    due = deadline_step(alert, now) if alert.wait_seq == wait_seq else None
    if due not in (Step.ESCALATED, Step.RELEASED):
        return None
    start = alert.level + 1 if due is Step.ESCALATED else 1
    return oncall.plan(cast(dict[str, Any], alert.policy), start, now, calendars())


def resolve_at_source(alert_id: int) -> dict[str, Any]:
    """The source says the condition is gone: resolve with outcome ``resolved_at_source``."""

    def work(session: Session) -> list[tuple[Alert, Step, str, dict[str, Any]]]:
        alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if alert.status not in (Status.OPEN, Status.ACKNOWLEDGED, Status.IGNORED):
            return []
        now = utcnow()
        alert.status, alert.outcome = Status.RESOLVED.value, Outcome.RESOLVED_AT_SOURCE.value
        actor = f"source:{alert.source}"
        alert.resolved_at, alert.resolved_by, alert.ack_deadline = now, actor, None
        alert.remind_at, alert.suppressed_until = None, None
        return [_record(session, alert, Step.RESOLVED, actor, {
            "outcome": alert.outcome, "at_source": True, "level": alert.level,
            "source_resolved_at": alert.source_resolved_at,
        })]

    done = _commit_and_emit(work)
    return done[0][3] if done else {}


def _apply(
    session: Session, alert: Alert, phase: Phase, answer: Answer, now: datetime,
    reminder: dict[str, Any] | None = None, ahead: oncall.Plan | None = None,
) -> tuple[Alert, Step, str, dict[str, Any]]:
    pinned = cast(dict[str, Any], alert.policy)
    who = answer.responder
    action = phase.value
    if who is None:
        due = deadline_step(alert, now)
        if due is None:
            return _record(session, alert, Step.REFUSED, "anonymous",
                           {"action": action, "reason": "no responder chosen"})
        return _act_on_time(session, alert, due, now, reminder, ahead)
    if phase is Phase.SUPPRESSED:
        return refusal(session, alert, who, action, suppressed_reason(alert))
    if not ownership.may_act(pinned, alert.level, who, alert.on_call):
        return refusal(session, alert, who, action)
    if phase is Phase.ACKNOWLEDGE:
        late = _late_by(alert.ack_deadline, now)
        alert.status = Status.ACKNOWLEDGED.value
        alert.acknowledged_at, alert.acknowledged_by, alert.ack_deadline = now, who, None
        alert.remind_at = next_reminder(alert, now)
        return _record(session, alert, Step.ACKNOWLEDGED, who, {
            "level": alert.level, "note": answer.note, "late_by_s": late,
            **({"remind_at": alert.remind_at} if alert.remind_at else {}),
        })
    if answer.outcome is None:
        return _record(session, alert, Step.REFUSED, who,
                       {"action": action, "reason": "no outcome chosen"})
    alert.status = Status.RESOLVED.value
    alert.resolved_at, alert.resolved_by, alert.outcome = now, who, answer.outcome
    alert.ack_deadline, alert.remind_at = None, None
    return _record(session, alert, Step.RESOLVED, who, {
        "outcome": answer.outcome, "note": answer.note, "level": alert.level,
        "late_by_s": _late_by(alert.resolve_deadline, now),
    })


def refusal(
    session: Session, alert: Alert, who: str, action: str, reason: str | None = None,
) -> tuple[Alert, Step, str, dict[str, Any]]:
    """Record that ``who`` tried ``action`` and was refused (default: not in the chain)."""
    pinned = alert.policy or {"escalation_chain": []}
    allowed = ownership.responders(pinned, alert.level, alert.on_call)
    on_call = " (nor on call when the alert reached it)" if alert.on_call else ""
    return _record(session, alert, Step.REFUSED, who, {
        "action": action, "level": alert.level, "allowed": allowed,
        "reason": reason or f"'{who}' is not a responder at level {alert.level} or "
                            f"earlier{on_call}",
    })


def suppressed_reason(alert: Alert) -> str:
    until = alert.suppressed_until
    when = f"{until:%Y-%m-%d %H:%M:%S} UTC" if until else "its end"
    return f"alert {alert.id} is suppressed by a maintenance window until {when}"


def _late_by(deadline: datetime | None, now: datetime) -> float | None:
    if deadline is None or now <= deadline:
        return None
    return round((now - deadline).total_seconds(), 3)


def _act_on_time(
    session: Session, alert: Alert, due: Step, now: datetime, reminder: dict[str, Any] | None,
    ahead: oncall.Plan | None = None,
) -> tuple[Alert, Step, str, dict[str, Any]]:
    """Record what :func:`deadline_step` decided for a wake without an answer."""
    if due is Step.ESCALATED:
        return _escalate(session, alert, now, ahead)
    if due is Step.RELEASED:
        return _release(session, alert, now, ahead)
    if due is Step.IGNORED:
        late = _late_by(alert.ack_deadline, now)
        alert.status = Status.IGNORED.value
        alert.ack_deadline = None
        return _record(session, alert, Step.IGNORED, "axtrace", {
            "level": alert.level, "reason": "no one acknowledged at any level",
            "late_by_s": late,
        })
    if due is Step.OVERDUE:
        alert.overdue_at = now
        return _record(session, alert, Step.OVERDUE, "axtrace", {
            "level": alert.level, "reason": "resolve deadline passed at the last level",
            "late_by_s": _late_by(alert.resolve_deadline, now),
            "resolve_deadline": alert.resolve_deadline,
        })
    late = _late_by(alert.remind_at, now)
    alert.remind_at = next_reminder(alert, now)
    sent = reminder or {"level": alert.level, "delivered": False,
                        "error": "not sent: the alert changed while the reminder was sent"}
    return _record(session, alert, Step.REMINDED, "axtrace", sent | {
        "late_by_s": late, "remind_at": alert.remind_at,
        "resolve_deadline": alert.resolve_deadline,
    })


def _escalate(
    session: Session, alert: Alert, now: datetime, ahead: oncall.Plan | None = None,
) -> tuple[Alert, Step, str, dict[str, Any]]:
    """Give the alert to the next level with someone on call (``ahead``, read before the
    transaction; levels with nobody are skipped): a fresh acknowledge deadline for an open
    alert; for an acknowledged one, a fresh resolve window (the policy's ``resolve_within``,
    counted from now) and that level's reminders."""
    pinned = cast(dict[str, Any], alert.policy)
    acknowledged = alert.status == Status.ACKNOWLEDGED
    late = _late_by(alert.resolve_deadline if acknowledged else alert.ack_deadline, now)
    previous = alert.level
    plan = ahead if ahead is not None and ahead.skipped_from == previous + 1 else \
        oncall.plan(pinned, previous + 1, now, _not_read)
    alert.level = plan.level
    _pin_on_call(alert, plan)
    if acknowledged:
        alert.resolve_deadline = now + ownership.resolve_window(pinned, alert.severity)
        alert.remind_at = next_reminder(alert, now)
    else:
        alert.ack_deadline = now + ownership.ack_window(pinned, alert.level, alert.severity)
    return _record(session, alert, Step.ESCALATED, "axtrace", {
        "from_level": previous, "to_level": alert.level,
        "reason": RESOLVE_DEADLINE_PASSED if acknowledged else ACK_DEADLINE_PASSED,
        "late_by_s": late,
        "responders": ownership.level_people(pinned, alert.level, alert.on_call),
        **_deadline(alert), **plan.detail(),
    })


def _not_read(source: str) -> str:
    return "not read: the alert changed while it was read"


def close(alert_id: int) -> dict[str, Any]:
    def work(session: Session) -> list[tuple[Alert, Step, str, dict[str, Any]]]:
        alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if alert.status != Status.RESOLVED:
            return []
        now = utcnow()
        alert.status, alert.closed_at, alert.open_key = Status.CLOSED.value, now, None
        return [_record(session, alert, Step.CLOSED, "axtrace", {
            "outcome": alert.outcome, "resolved_by": alert.resolved_by,
            "open_seconds": round((now - alert.received_at).total_seconds(), 3),
        })]

    done = _commit_and_emit(work)
    return done[0][3] if done else {}


def summary(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.id, "site": alert.site, "status": alert.status,
        "level": alert.level, "acknowledged_by": alert.acknowledged_by,
        "resolved_by": alert.resolved_by, "outcome": alert.outcome,
        "policy_version": alert.policy_version, "workflow_version": alert.workflow_version,
    }


# --------------------------------------------------------------------------- the run


async def wait_for_answer(alert: Alert, phase: Phase) -> Answer:
    """Suspend the run until someone answers (or the sweeper wakes it at the deadline)."""
    from prefect import get_run_logger
    from prefect.flow_runs import suspend_flow_run

    if phase is Phase.SUPPRESSED:
        return await wait_for_release(alert)
    allowed = ownership.responders(cast(dict[str, Any], alert.policy), alert.level,
                                   alert.on_call)
    deadline = alert.ack_deadline if phase is Phase.ACKNOWLEDGE else alert.resolve_deadline
    get_run_logger().info(
        "Waiting for %s of alert %s at %s from one of %s (deadline %s)",
        phase.value, alert.id, alert.site, ", ".join(allowed),
        deadline.isoformat() if deadline else "none",
    )
    await publish_artifact(alert, waiting_line(alert, phase, allowed))
    given = await suspend_flow_run(
        wait_for_input=answer_form(alert, phase), key=pause_key(alert, phase),
        timeout=int(BACKSTOP.total_seconds()),
    )
    return Answer(
        responder=given.responder, note=given.note or "", outcome=getattr(given, "outcome", None),
        answered_at=await _answered_at(alert, pause_key(alert, phase)),
    )


async def wait_for_release(alert: Alert) -> Answer:
    """Suspend the run of a suppressed alert until the sweeper wakes it at the window's end
    (or the source resolves it): no form, no one is asked anything."""
    from prefect import get_run_logger
    from prefect.flow_runs import asuspend_flow_run

    line = f"{suppressed_reason(alert)}: no one is paged."
    get_run_logger().info(line)
    await publish_artifact(alert, markdown_text(line))
    await asuspend_flow_run(key=pause_key(alert, Phase.SUPPRESSED),
                           timeout=int(BACKSTOP.total_seconds()))
    return Answer()


def waiting_line(alert: Alert, phase: Phase, allowed: list[str]) -> str:
    deadline = alert.ack_deadline if phase is Phase.ACKNOWLEDGE else alert.resolve_deadline
    due = f" until {deadline:%Y-%m-%d %H:%M:%S} UTC" if deadline else ""
    return f"Waiting for **{phase.value}** from {_names(allowed)}{due}."


def artifact_markdown(alert: Alert, trace: list[Any], status_line: str) -> str:
    """The run's page in the UI: the alert, who must act, and the trace so far.

    Every alert field is escaped (:func:`axtrace.text.markdown_text`): a title or actor name
    cannot add trace rows, links, images or control bytes to the page. ``status_line`` is
    AxTrace's own Markdown, built from escaped parts."""
    evidence = markdown_link("evidence", alert.evidence_url, empty="no evidence link")
    rows = "\n".join(
        f"| {e.seq} | {e.at:%Y-%m-%d %H:%M:%S} | {markdown_text(e.step)} "
        f"| {markdown_text(e.actor)} |" for e in trace
    )
    return (
        f"## Alert {alert.id} at {markdown_text(alert.site)}: {markdown_text(alert.title)}\n\n"
        f"Severity **{markdown_text(alert.severity)}**; detector "
        f"{markdown_text(alert.detector or '-')} {markdown_text(alert.detector_version or '')}; "
        f"{evidence}.\n\n"
        f"Owner **{markdown_text(alert.owner)}**, level {alert.level}, status "
        f"**{markdown_text(alert.status)}**. {status_line}\n\n"
        f"| # | at (UTC) | step | actor |\n|---|---|---|---|\n{rows}\n"
    )


async def publish_artifact(alert: Alert, status_line: str) -> None:
    """One markdown artifact per alert (key ``alert-<id>``); each wait adds a version."""
    from prefect.artifacts import acreate_markdown_artifact

    with ledger_session() as session:
        trace = list(repo.trace_of(session=session, alert_id=alert.id or 0))
    await acreate_markdown_artifact(
        key=f"alert-{alert.id}", markdown=artifact_markdown(alert, trace, status_line),
        description=f"Alert {alert.id} at {markdown_text(alert.site)}: where the response stands",
    )


async def _answered_at(alert: Alert, key: str) -> datetime | None:
    """When the answer reached Prefect (not when this process got to it)."""
    from uuid import UUID

    from prefect import get_client

    async with get_client() as client:
        found = await client.filter_flow_run_input(
            flow_run_id=UUID(alert.flow_run_id), key_prefix=f"suspended-{key}-response",
            limit=1, exclude_keys=set(),
        )
    return found[0].created if found else None


def _tasks() -> dict[str, Any]:
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    def make(fn: Callable[..., Any], name: str) -> Any:
        return task(name=name, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)(fn)

    return {
        "record": make(record_alert, "record"), "assign": make(assign, "assign"),
        "notify": make(notify, "notify"), "answer": make(take_answer, "take-answer"),
        "source_resolve": make(resolve_at_source, "resolve-at-source"),
        "close": make(close, "close"),
    }


async def respond(*, site: str, alert_id: int | None, manual: ManualAlert) -> dict[str, Any]:
    """The body of ``respond-to-alert``: safe to run again from the top after every resume."""
    steps = _tasks()
    own_id = steps["record"](site, alert_id, manual)
    if own_id is None:
        return {"alert_id": alert_id, "site": site, "status": "handled-by-another-run"}
    while True:
        alert = load_alert(own_id)
        phase = decide(alert)
        if phase is Phase.DONE:
            await publish_artifact(alert, f"Closed; outcome **{markdown_text(alert.outcome)}**.")
            return summary(alert)
        if phase in (Phase.ASSIGN, Phase.SOURCE_RESOLVE, Phase.NOTIFY, Phase.CLOSE):
            steps[phase.value](own_id)
            continue
        answer = await wait_for_answer(alert, phase)
        steps["answer"](own_id, phase, alert.wait_seq, answer)
