"""The deadline auditor: every open alert must have a live run, waiting or working.

Runs on a schedule (deployment ``deadline-auditor/axtrace``). It finds alerts whose run never
got created, whose run died (crashed, failed, cancelled) before the alert closed, and overdue
waits the sweeper has not woken; it repairs them (dispatch again, wake) and records each repair
as a ``repaired`` step. Each pass emits ``axtrace.auditor.heartbeat`` so a Prefect automation
can page when the auditor itself stops.
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

logger = logging.getLogger("axtrace.auditor")
OPEN_STATUSES = (Status.OPEN.value, Status.ACKNOWLEDGED.value, Status.IGNORED.value,
                 Status.RESOLVED.value)
GRACE = timedelta(seconds=60)
"""How long past a deadline a wait may stay before the auditor wakes it itself."""


@dataclass(frozen=True)
class Repair:
    action: str  # "redispatch" or "wake"
    reason: str


def repair_for(
    alert: Alert, run_state: str | None, pause_key: str | None, now: datetime,
    pending: bool,
) -> Repair | None:
    """What an open alert needs, from its run's state (pure; ``None`` when all is well)."""
    if pending:
        return None  # the dispatcher still owes this alert something
    if alert.flow_run_id is None or run_state is None:
        return Repair("redispatch", "the alert has no run")
    if run_state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
        return Repair("redispatch", f"its run ended {run_state.lower()} before the alert closed")
    overdue = alert.ack_deadline is not None and now > alert.ack_deadline + GRACE
    if run_state == "PAUSED" and overdue and (pause_key or "").startswith("acknowledge"):
        return Repair("wake", "the acknowledge deadline passed and no one woke the run")
    return None


async def audit_once(client: Any) -> dict[str, int]:
    """One pass over the open alerts; returns counts for the heartbeat."""
    from prefect.events import emit_event

    with ledger_session() as session:
        alerts = session.exec(select(Alert).where(col(Alert.status).in_(OPEN_STATUSES))).all()
        pending = set(session.exec(select(OutboxItem.alert_id).where(
            col(OutboxItem.done_at).is_(None))).all())
    counts = {"open": len(alerts), "redispatched": 0, "woken": 0}
    for alert in alerts:
        state, key = await _run_state(client, alert.flow_run_id)
        repair = repair_for(alert, state, key, utcnow(), alert.id in pending)
        if repair is not None:
            await _apply(client, alert, repair)
            counts["redispatched" if repair.action == "redispatch" else "woken"] += 1
    emit_event(event="axtrace.auditor.heartbeat",
               resource={"prefect.resource.id": "axtrace.auditor"}, payload=counts)
    return counts


async def _run_state(client: Any, run_id: str | None) -> tuple[str | None, str | None]:
    from prefect.exceptions import ObjectNotFound

    if run_id is None:
        return None, None
    try:
        run = await client.read_flow_run(run_id)
    except ObjectNotFound:
        return None, None
    if run.state is None:
        return None, None
    return run.state.type.value, run.state.state_details.pause_key


async def _apply(client: Any, alert: Alert, repair: Repair) -> None:
    if repair.action == "wake":
        await client.resume_flow_run(alert.flow_run_id, run_input={})
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
