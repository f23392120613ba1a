"""Where an alert stands and what is due next, decided from the ledger row alone.

Pure: every function here reads an :class:`~axtrace.ledger.models.Alert` (and a time) and
returns a decision or a value. No ledger session, no Prefect, no network, no clock: the
callers in :mod:`axtrace.workflow.steps` and :mod:`axtrace.workflow.answers` do the I/O.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from axtrace import ownership
from axtrace.ledger.models import Alert, Status, Step


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


def late_by(deadline: datetime | None, now: datetime) -> float | None:
    """Seconds ``now`` is past ``deadline`` (None: not late, or no deadline)."""
    if deadline is None or now <= deadline:
        return None
    return round((now - deadline).total_seconds(), 3)


def deadline_detail(alert: Alert) -> dict[str, Any]:
    """The deadline the notified level must meet, for the step's detail."""
    if alert.status == Status.ACKNOWLEDGED:
        return {"resolve_deadline": alert.resolve_deadline}
    return {"ack_deadline": alert.ack_deadline}


def suppressed_reason(alert: Alert) -> str:
    until = alert.suppressed_until
    when = f"{until:%Y-%m-%d %H:%M:%S} UTC" if until else "its end"
    return f"alert {alert.id} is suppressed by a maintenance window until {when}"


def summary(alert: Alert) -> dict[str, Any]:
    """Where the alert ended: the run's return value and the notification's ``alert``."""
    return {
        "alert_id": alert.id, "site": alert.site, "status": alert.status,
        "level": alert.level, "acknowledged_by": alert.acknowledged_by,
        "resolved_by": alert.resolved_by, "outcome": alert.outcome,
        "policy_version": alert.policy_version, "workflow_version": alert.workflow_version,
    }
