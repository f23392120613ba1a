"""The deadline auditor: every open alert must have a live run, waiting or working.

Runs on a schedule (deployment ``deadline-auditor/axtrace``). It finds alerts whose run never
got created, whose run died (crashed, failed, cancelled) before the alert closed, and overdue
waits (an acknowledge or resolve deadline, a reminder) the sweeper has not woken; it repairs
them (dispatch again, wake) and records each repair as a ``repaired`` step. Each pass emits
``axtrace.auditor.heartbeat`` so a Prefect automation can page when the auditor itself stops.
It also puts on record each site policy edited outside ``sites apply``
(:mod:`axtrace.policyhistory`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from axtrace.events import emit_step
from axtrace.ledger import repo
from axtrace.ledger.models import Alert, OutboxItem, Status, Step, utcnow
from axtrace.ledger.session import in_transaction, ledger_session
from axtrace.settings import get_settings
from axtrace.workflow import Phase, wake_at

logger = logging.getLogger("axtrace.auditor")
OPEN_STATUSES = (Status.OPEN.value, Status.ACKNOWLEDGED.value, Status.IGNORED.value,
                 Status.RESOLVED.value)
GRACE = timedelta(seconds=60)
"""How long past a deadline a wait may stay before the auditor wakes it itself."""


MAX_RESCHEDULES = 3


@dataclass(frozen=True)
class Repair:
    action: str  # "redispatch" (a new run), "reschedule" (the same run again) or "wake"
    reason: str


@dataclass(frozen=True)
class RunView:
    """What the auditor knows of an alert's run."""

    state: str | None = None
    pause_key: str | None = None
    since: datetime | None = None


def repair_for(
    alert: Alert, run: RunView, now: datetime, *, pending: bool, rescheduled: int = 0,
    stuck_after: timedelta = timedelta(minutes=5),
) -> Repair | None:
    """What an open alert needs, from its run's state (pure; ``None`` when all is well).

    A run that crashed, or that has been RUNNING far longer than any step takes (its process
    died with the machine), is scheduled again: the same run replays from the top and keeps
    the answers already given to it. A run that was cancelled or completed without closing
    the alert is replaced by a new one.
    """
    if pending:
        return None  # the dispatcher still owes this alert something
    if alert.flow_run_id is None or run.state is None:
        return Repair("redispatch", "the alert has no run")
    if run.state in ("CRASHED", "FAILED") and rescheduled < MAX_RESCHEDULES:
        return Repair("reschedule", f"its run {run.state.lower()}; running it again")
    stuck = run.since is not None and now - run.since > stuck_after
    if run.state == "RUNNING" and stuck and rescheduled < MAX_RESCHEDULES:
        minutes = (now - (run.since or now)).total_seconds() / 60
        return Repair("reschedule", f"its run has been running for {minutes:.0f} min: "
                      "its process is gone; running it again")
    if run.state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
        return Repair("redispatch", f"its run ended {run.state.lower()} before the alert closed")
    due = wake_at(alert)
    overdue = due is not None and now > due + GRACE
    waits_for = _waits_for(alert)
    if run.state == "PAUSED" and overdue and (run.pause_key or "").startswith(waits_for):
        return Repair("wake", f"the {_what_is_due(alert, due)} passed and no one woke the run")
    return None


def _waits_for(alert: Alert) -> Phase:
    """The wait a healthy run of the alert is paused in (a suppressed alert: its release)."""
    if alert.suppressed_until is not None:
        return Phase.SUPPRESSED
    return Phase.ACKNOWLEDGE if alert.status == Status.OPEN else Phase.RESOLVE


def _what_is_due(alert: Alert, due: datetime | None) -> str:
    if alert.suppressed_until is not None:
        return "maintenance window's end"
    if alert.status == Status.OPEN:
        return "acknowledge deadline"
    return "reminder time" if due == alert.remind_at else "resolve deadline"


async def audit_once(client: Any) -> dict[str, int]:
    """One pass over the open alerts; returns counts for the heartbeat."""
    from prefect.events import emit_event

    with ledger_session() as session:
        alerts = session.exec(select(Alert).where(col(Alert.status).in_(OPEN_STATUSES))).all()
        pending = set(session.exec(select(OutboxItem.alert_id).where(
            col(OutboxItem.done_at).is_(None))).all())
    counts = {"open": len(alerts), "redispatched": 0, "rescheduled": 0, "woken": 0}
    done = {"redispatch": "redispatched", "reschedule": "rescheduled", "wake": "woken"}
    stuck_after = timedelta(seconds=get_settings().stuck_run_seconds)
    for alert in alerts:
        run = await _run_view(client, alert.flow_run_id)
        repair = repair_for(alert, run, utcnow(), pending=alert.id in pending,
                            rescheduled=_rescheduled(alert.id or 0), stuck_after=stuck_after)
        if repair is not None:
            await _apply(client, alert, repair)
            counts[done[repair.action]] += 1
    counts["policy_edits"] = await _policy_edits(client)
    emit_event(event="axtrace.auditor.heartbeat",
               resource={"prefect.resource.id": "axtrace.auditor"}, payload=counts)
    return counts


async def _policy_edits(client: Any) -> int:
    """Put on record each policy block edited outside ``sites apply`` (the UI, the API)."""
    from axtrace import policyhistory

    documents = await policyhistory.policy_documents(client)
    found = in_transaction(lambda session: policyhistory.detect_edits(documents, session,
                                                                      utcnow()))
    for entry in found:
        logger.warning("site %s: policy edited outside sites apply (%s -> %s)",
                       entry.site, entry.old_version, entry.new_version)
    return len(found)


async def _run_view(client: Any, run_id: str | None) -> RunView:
    from prefect.exceptions import ObjectNotFound

    if run_id is None:
        return RunView()
    try:
        run = await client.read_flow_run(run_id)
    except ObjectNotFound:
        return RunView()
    if run.state is None:
        return RunView()
    return RunView(run.state.type.value, run.state.state_details.pause_key,
                   run.state.timestamp)


def _rescheduled(alert_id: int) -> int:
    with ledger_session() as session:
        trace = repo.trace_of(session=session, alert_id=alert_id)
    return sum(1 for e in trace if e.step == Step.REPAIRED
               and e.detail.get("action") == "reschedule")


async def _apply(client: Any, alert: Alert, repair: Repair) -> None:
    from prefect.states import Scheduled

    if repair.action == "wake":
        await client.resume_flow_run(alert.flow_run_id, run_input={})
    if repair.action == "reschedule":
        await client.set_flow_run_state(alert.flow_run_id, Scheduled(), force=True)
    _record(alert.id or 0, repair)
    logger.warning("alert %s: %s (%s)", alert.id, repair.action, repair.reason)


def _record(alert_id: int, repair: Repair) -> None:
    def work(session: Session) -> tuple[Alert, dict[str, Any]]:
        alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        detail = {"action": repair.action, "reason": repair.reason,
                  "previous_run": alert.flow_run_id}
        if repair.action == "redispatch":
            alert.flow_run_id = None
            now = utcnow()
            session.add(OutboxItem(alert_id=alert_id, topic="redispatch", created_at=now,
                                   due_at=now))
        repo.append_step(session=session, alert_id=alert_id, step=Step.REPAIRED,
                         actor="auditor", detail=detail)
        session.add(alert)
        return alert, detail

    alert, detail = in_transaction(work)
    emit_step(Step.REPAIRED.value, alert, detail, "auditor")
