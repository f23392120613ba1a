"""The run's steps in the ledger: attach the run to its alert, assign, notify, resolve at the
source, close. Each step is one transaction (:func:`commit_and_emit`): it locks the alert,
checks the step is still due (a replayed run finds it done and writes nothing), writes the
alert and its trace step together, and emits the step's event once committed.

Reads that may be slow or fail (the policy block, on-call calendars, a notification's
delivery) happen before the transaction, never inside it. Taking a person's answer, or a
wake without one, is in :mod:`axtrace.workflow.answers`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlmodel import Session

from axtrace import maintenance, oncall, ownership
from axtrace.events import emit_step
from axtrace.ledger import repo
from axtrace.ledger.models import Alert, AlertCreate, Outcome, Status, Step, utcnow
from axtrace.ledger.session import in_transaction, ledger_session
from axtrace.version import workflow_version
from axtrace.workflow.delivery import deliver
from axtrace.workflow.prefect_io import current_run_id, label_run, site_policy
from axtrace.workflow.records import ManualAlert, StepRecord
from axtrace.workflow.transitions import deadline_detail

logger = logging.getLogger("axtrace.workflow")

Work = Callable[[Session], list[StepRecord]]
"""A step's transaction: the steps it wrote (none: nothing was due)."""


def record_step(
    session: Session, alert: Alert, step: Step, actor: str, detail: dict[str, Any],
) -> StepRecord:
    """Append ``step`` to the alert's trace and write the alert with it (flushed, not
    committed: the caller's transaction commits both)."""
    assert alert.id is not None
    repo.append_step(session=session, alert_id=alert.id, step=step, actor=actor, detail=detail)
    session.add(alert)
    session.flush()
    return StepRecord(alert, step, actor, detail)


def commit_and_emit(work: Work) -> list[StepRecord]:
    """Write steps in one transaction, then emit one Prefect event per step written."""
    done = in_transaction(work)
    for record in done:
        emit_step(record.step.value, record.alert, record.detail, record.actor)
    return done


def first_detail(done: list[StepRecord]) -> dict[str, Any]:
    """The detail of the first step written ({}: none was due)."""
    return done[0].detail if done else {}


def load_alert(alert_id: int) -> Alert:
    with ledger_session() as session:
        return repo.get_alert(session=session, alert_id=alert_id)


def calendars() -> oncall.Reader:
    """Reads on-call calendars as this process's settings allow (private addresses)."""
    from axtrace.settings import get_settings

    return oncall.reader(allow_private=get_settings().allow_private_webhooks)


# --------------------------------------------------------------------------- attach


@dataclass(frozen=True)
class _Attached:
    """The run's alert as :func:`record_alert` found it."""

    alert: Alert
    created: StepRecord | None = None
    """The manual alert's ``received`` step, when this run created it."""
    owner_run: str | None = None
    """Another run handles the alert: this one stops."""


def record_alert(site: str, alert_id: int | None, manual: ManualAlert) -> int | None:
    """Attach this run to its alert, or record a manual alert; None if another run owns it."""
    run_id = current_run_id()
    attached = in_transaction(lambda session: _attach(session, site, alert_id, manual, run_id))
    if attached.owner_run is not None:
        logger.warning("alert %s is handled by run %s; this run stops", attached.alert.id,
                       attached.owner_run)
        return None
    if attached.created is not None:
        created = attached.created
        emit_step(created.step.value, created.alert, created.detail, created.actor)
    label_run(attached.alert)
    return attached.alert.id


def _attach(
    session: Session, site: str, alert_id: int | None, manual: ManualAlert, run_id: str | None,
) -> _Attached:
    if alert_id is None:
        existing = repo.find_by_run(session=session, flow_run_id=run_id) if run_id else None
        if existing is not None:
            return _Attached(existing)
        created = repo.create_alert(
            session=session, actor="prefect-ui", dispatch=False, flow_run_id=run_id,
            alert=AlertCreate(
                site=site, key=f"manual-{run_id}", source="manual", title=manual.title,
                severity=manual.severity, detector=manual.detector,
                evidence_url=manual.evidence_url,
            ),
        )
        return _Attached(created, StepRecord(created, Step.RECEIVED, "prefect-ui",
                                             {"source": "manual"}))
    alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
    if alert.site != site:
        raise ValueError(f"alert {alert_id} belongs to site '{alert.site}', not '{site}'")
    if alert.flow_run_id and run_id and alert.flow_run_id != run_id:
        return _Attached(alert, owner_run=alert.flow_run_id)
    alert.flow_run_id = run_id
    session.add(alert)
    return _Attached(alert)


# --------------------------------------------------------------------------- assign


def assign(alert_id: int) -> dict[str, Any]:
    """Pin the site's policy on the alert and give it to level 1 of the chain (or the first
    level after it with someone on call)."""
    policy = site_policy(load_alert(alert_id).site)
    pinned = ownership.snapshot(policy)
    version = workflow_version()
    start = oncall.plan(pinned, 1, utcnow(), calendars())  # read before the transaction

    def work(session: Session) -> list[StepRecord]:
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
        pin_on_call(alert, start)
        if held is None:
            start_deadlines(alert, now, alert.received_at)
        assigned = record_step(session, alert, Step.ASSIGNED, "axtrace", {
            "owner": alert.owner, "level": alert.level,
            "responders": ownership.responders(pinned, alert.level, alert.on_call),
            "policy_version": alert.policy_version, "workflow_version": version,
            "ack_deadline": alert.ack_deadline, "resolve_deadline": alert.resolve_deadline,
            **start.detail(),
        })
        return [assigned] if held is None else [assigned, _suppress(session, alert, held)]

    return first_detail(commit_and_emit(work))


def start_deadlines(alert: Alert, now: datetime, resolve_from: datetime) -> None:
    """Level 1's acknowledge deadline from ``now``, the resolve deadline from ``resolve_from``
    (receipt; or the release from a maintenance window)."""
    pinned = cast(dict[str, Any], alert.policy)
    alert.ack_deadline = now + ownership.ack_window(pinned, alert.level, alert.severity)
    alert.resolve_deadline = resolve_from + ownership.resolve_window(pinned, alert.severity)


def pin_on_call(alert: Alert, plan: oncall.Plan) -> None:
    """Pin who is on call at the levels ``plan`` reached (a new dict: JSON is not tracked)."""
    if plan.uses_calendar:
        alert.on_call = {**(alert.on_call or {}), **plan.pinned()}


def _suppress(session: Session, alert: Alert, held: maintenance.Hold) -> StepRecord:
    """Hold the alert back until its maintenance window ends: no one paged, no deadline."""
    alert.suppressed_until = held.until
    return record_step(session, alert, Step.SUPPRESSED, "axtrace", held.detail())


# --------------------------------------------------------------------------- notify, end


def notify(alert_id: int) -> dict[str, Any]:
    """Tell the responders of the current level, through the policy's notification block."""
    alert = load_alert(alert_id)
    level = alert.level
    sent = deliver(alert)

    def work(session: Session) -> list[StepRecord]:
        row = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if row.notified_level >= level:
            return []
        row.notified_level = level
        return [record_step(session, row, Step.NOTIFIED, "axtrace", sent | deadline_detail(row))]

    return first_detail(commit_and_emit(work))


def resolve_at_source(alert_id: int) -> dict[str, Any]:
    """The source says the condition is gone: resolve with outcome ``resolved_at_source``."""

    def work(session: Session) -> list[StepRecord]:
        alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if alert.status not in (Status.OPEN, Status.ACKNOWLEDGED, Status.IGNORED):
            return []
        now = utcnow()
        alert.status, alert.outcome = Status.RESOLVED.value, Outcome.RESOLVED_AT_SOURCE.value
        actor = f"source:{alert.source}"
        alert.resolved_at, alert.resolved_by, alert.ack_deadline = now, actor, None
        alert.remind_at, alert.suppressed_until = None, None
        return [record_step(session, alert, Step.RESOLVED, actor, {
            "outcome": alert.outcome, "at_source": True, "level": alert.level,
            "source_resolved_at": alert.source_resolved_at,
        })]

    return first_detail(commit_and_emit(work))


def close(alert_id: int) -> dict[str, Any]:
    """Close a resolved alert: the end of its response."""

    def work(session: Session) -> list[StepRecord]:
        alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if alert.status != Status.RESOLVED:
            return []
        now = utcnow()
        alert.status, alert.closed_at, alert.open_key = Status.CLOSED.value, now, None
        return [record_step(session, alert, Step.CLOSED, "axtrace", {
            "outcome": alert.outcome, "resolved_by": alert.resolved_by,
            "open_seconds": round((now - alert.received_at).total_seconds(), 3),
        })]

    return first_detail(commit_and_emit(work))
