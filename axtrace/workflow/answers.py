"""Taking an answer: a person's acknowledgement or resolution, or the sweeper's wake without
one, which :func:`~axtrace.workflow.transitions.deadline_step` turns into an escalation,
a reminder, a release from a maintenance window, or marks the alert ignored or overdue.

Each answer is one transaction that also advances the alert's ``wait_seq``, so an answer is
never taken twice. What may be slow (sending a reminder, reading who is on call) happens
before that transaction; the transaction records what it found.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlmodel import Session

from axtrace import oncall, ownership
from axtrace.ledger import repo
from axtrace.ledger.models import (
    ACK_DEADLINE_PASSED,
    RESOLVE_DEADLINE_PASSED,
    Alert,
    Status,
    Step,
    utcnow,
)
from axtrace.workflow.delivery import deliver
from axtrace.workflow.records import Answer, StepRecord
from axtrace.workflow.steps import (
    calendars,
    commit_and_emit,
    load_alert,
    pin_on_call,
    record_step,
    start_deadlines,
)
from axtrace.workflow.transitions import (
    Phase,
    deadline_detail,
    deadline_step,
    late_by,
    next_reminder,
    suppressed_reason,
)


def take_answer(alert_id: int, phase: Phase, wait_seq: int, answer: Answer) -> Step | None:
    """Apply one answer (or an empty wake) in one transaction; return the step it recorded."""
    now = answer.answered_at or utcnow()
    reminder, ahead = _before_a_wake(alert_id, wait_seq, answer, now)

    def work(session: Session) -> list[StepRecord]:
        alert = repo.get_alert(session=session, alert_id=alert_id, lock=True)
        if alert.wait_seq != wait_seq:
            return []  # already taken by an earlier execution of this run
        alert.wait_seq += 1
        session.add(alert)
        if answer.responder is None and alert.source_resolved_at is not None:
            return []  # woken because the source resolved it: the loop resolves next
        return [_apply(session, alert, phase, answer, now, reminder, ahead)]

    done = commit_and_emit(work)
    return done[0].step if done else None


def _before_a_wake(
    alert_id: int, wait_seq: int, answer: Answer, now: datetime,
) -> tuple[dict[str, Any] | None, oncall.Plan | None]:
    """What a wake without an answer needs done before its transaction, from one read of the
    alert: a due reminder is sent (as ``notify`` does); for an escalation, who is on call from
    the next level on, and for a release from a maintenance window, from level 1 (calendars
    are read outside the transaction). Nothing for an answer, a wake already taken, or an
    alert its source resolved (the loop resolves it next)."""
    if answer.responder is not None:
        return None, None
    alert = load_alert(alert_id)
    if alert.wait_seq != wait_seq or alert.source_resolved_at is not None:
        return None, None
    due = deadline_step(alert, now)
    if due is Step.REMINDED:
        return deliver(alert), None
    if due in (Step.ESCALATED, Step.RELEASED):
        start = alert.level + 1 if due is Step.ESCALATED else 1
        return None, oncall.plan(cast(dict[str, Any], alert.policy), start, now, calendars())
    return None, None


# --------------------------------------------------------------------------- a person


def _apply(
    session: Session, alert: Alert, phase: Phase, answer: Answer, now: datetime,
    reminder: dict[str, Any] | None = None, ahead: oncall.Plan | None = None,
) -> StepRecord:
    pinned = cast(dict[str, Any], alert.policy)
    who = answer.responder
    action = phase.value
    if who is None:
        due = deadline_step(alert, now)
        if due is None:
            return record_step(session, alert, Step.REFUSED, "anonymous",
                               {"action": action, "reason": "no responder chosen"})
        return _act_on_time(session, alert, due, now, reminder, ahead)
    if phase is Phase.SUPPRESSED:
        return refusal(session, alert, who, action, suppressed_reason(alert))
    if not ownership.may_act(pinned, alert.level, who, alert.on_call):
        return refusal(session, alert, who, action)
    if phase is Phase.ACKNOWLEDGE:
        return _acknowledge(session, alert, who, answer, now)
    if answer.outcome is None:
        return record_step(session, alert, Step.REFUSED, who,
                           {"action": action, "reason": "no outcome chosen"})
    return _resolve(session, alert, who, answer, now)


def _acknowledge(
    session: Session, alert: Alert, who: str, answer: Answer, now: datetime,
) -> StepRecord:
    late = late_by(alert.ack_deadline, now)
    alert.status = Status.ACKNOWLEDGED.value
    alert.acknowledged_at, alert.acknowledged_by, alert.ack_deadline = now, who, None
    alert.remind_at = next_reminder(alert, now)
    return record_step(session, alert, Step.ACKNOWLEDGED, who, {
        "level": alert.level, "note": answer.note, "late_by_s": late,
        **({"remind_at": alert.remind_at} if alert.remind_at else {}),
    })


def _resolve(
    session: Session, alert: Alert, who: str, answer: Answer, now: datetime,
) -> StepRecord:
    alert.status = Status.RESOLVED.value
    alert.resolved_at, alert.resolved_by, alert.outcome = now, who, answer.outcome
    alert.ack_deadline, alert.remind_at = None, None
    return record_step(session, alert, Step.RESOLVED, who, {
        "outcome": answer.outcome, "note": answer.note, "level": alert.level,
        "late_by_s": late_by(alert.resolve_deadline, now),
    })


def refusal(
    session: Session, alert: Alert, who: str, action: str, reason: str | None = None,
) -> StepRecord:
    """Record that ``who`` tried ``action`` and was refused (default: not in the chain)."""
    pinned = alert.policy or {"escalation_chain": []}
    allowed = ownership.responders(pinned, alert.level, alert.on_call)
    on_call = " (nor on call when the alert reached it)" if alert.on_call else ""
    return record_step(session, alert, Step.REFUSED, who, {
        "action": action, "level": alert.level, "allowed": allowed,
        "reason": reason or f"'{who}' is not a responder at level {alert.level} or "
                            f"earlier{on_call}",
    })


# --------------------------------------------------------------------------- a wake


def _act_on_time(
    session: Session, alert: Alert, due: Step, now: datetime, reminder: dict[str, Any] | None,
    ahead: oncall.Plan | None = None,
) -> StepRecord:
    """Record what :func:`deadline_step` decided for a wake without an answer."""
    if due is Step.ESCALATED:
        return _escalate(session, alert, now, ahead)
    if due is Step.RELEASED:
        return _release(session, alert, now, ahead)
    if due is Step.IGNORED:
        late = late_by(alert.ack_deadline, now)
        alert.status = Status.IGNORED.value
        alert.ack_deadline = None
        return record_step(session, alert, Step.IGNORED, "axtrace", {
            "level": alert.level, "reason": "no one acknowledged at any level",
            "late_by_s": late,
        })
    if due is Step.OVERDUE:
        alert.overdue_at = now
        return record_step(session, alert, Step.OVERDUE, "axtrace", {
            "level": alert.level, "reason": "resolve deadline passed at the last level",
            "late_by_s": late_by(alert.resolve_deadline, now),
            "resolve_deadline": alert.resolve_deadline,
        })
    return _remind(session, alert, now, reminder)


def _remind(
    session: Session, alert: Alert, now: datetime, reminder: dict[str, Any] | None,
) -> StepRecord:
    late = late_by(alert.remind_at, now)
    alert.remind_at = next_reminder(alert, now)
    sent = reminder or {"level": alert.level, "delivered": False,
                        "error": "not sent: the alert changed while the reminder was sent"}
    return record_step(session, alert, Step.REMINDED, "axtrace", sent | {
        "late_by_s": late, "remind_at": alert.remind_at,
        "resolve_deadline": alert.resolve_deadline,
    })


def _escalate(
    session: Session, alert: Alert, now: datetime, ahead: oncall.Plan | None = None,
) -> StepRecord:
    """Give the alert to the next level with someone on call (``ahead``, read before the
    transaction; levels with nobody are skipped): a fresh acknowledge deadline for an open
    alert; for an acknowledged one, a fresh resolve window (the policy's ``resolve_within``,
    counted from now) and that level's reminders."""
    pinned = cast(dict[str, Any], alert.policy)
    acknowledged = alert.status == Status.ACKNOWLEDGED
    late = late_by(alert.resolve_deadline if acknowledged else alert.ack_deadline, now)
    previous = alert.level
    plan = ahead if ahead is not None and ahead.skipped_from == previous + 1 else \
        oncall.plan(pinned, previous + 1, now, _not_read)
    alert.level = plan.level
    pin_on_call(alert, plan)
    if acknowledged:
        alert.resolve_deadline = now + ownership.resolve_window(pinned, alert.severity)
        alert.remind_at = next_reminder(alert, now)
    else:
        alert.ack_deadline = now + ownership.ack_window(pinned, alert.level, alert.severity)
    return record_step(session, alert, Step.ESCALATED, "axtrace", {
        "from_level": previous, "to_level": alert.level,
        "reason": RESOLVE_DEADLINE_PASSED if acknowledged else ACK_DEADLINE_PASSED,
        "late_by_s": late,
        "responders": ownership.level_people(pinned, alert.level, alert.on_call),
        **deadline_detail(alert), **plan.detail(),
    })


def _not_read(source: str) -> str:
    return "not read: the alert changed while it was read"


def _release(
    session: Session, alert: Alert, now: datetime, ahead: oncall.Plan | None = None,
) -> StepRecord:
    """The window that suppressed the open alert has ended: the chain starts, deadlines fresh,
    with whoever is on call now (``ahead``, read before the transaction; else the names
    pinned at assignment)."""
    late = late_by(alert.suppressed_until, now)
    until, alert.suppressed_until = alert.suppressed_until, None
    if ahead is not None and ahead.skipped_from == 1:
        alert.level = ahead.level
        pin_on_call(alert, ahead)
    start_deadlines(alert, now, now)
    pinned = cast(dict[str, Any], alert.policy)
    return record_step(session, alert, Step.RELEASED, "axtrace", {
        "level": alert.level, "suppressed_until": until, "late_by_s": late,
        "ack_deadline": alert.ack_deadline, "resolve_deadline": alert.resolve_deadline,
        "responders": ownership.level_people(pinned, alert.level, alert.on_call),
        **(ahead.detail() if ahead is not None and ahead.skipped_from == 1 else {}),
    })
