"""What the deadline auditor repairs, decided from an alert and its run's state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from axtrace.auditor import Repair, RunView, repair_for
from axtrace.ledger.models import Alert, utcnow

NOW = utcnow()


def alert(**fields: object) -> Alert:
    return Alert.model_validate({"site": "s", "key": "k", "title": "t", "received_at": NOW,
                                 "flow_run_id": "run-1", **fields})


@pytest.mark.parametrize("state", ["COMPLETED", "CANCELLED"])
def test_a_run_that_ended_before_its_alert_closed_is_replaced_by_a_new_one(state: str) -> None:
    repair = repair_for(alert(), RunView(state), NOW, pending=False)
    assert repair is not None
    assert repair.action == "redispatch"
    assert state.lower() in repair.reason


@pytest.mark.parametrize("state", ["FAILED", "CRASHED"])
def test_a_crashed_run_is_run_again_keeping_its_answers_three_times_at_most(state: str) -> None:
    again = repair_for(alert(), RunView(state), NOW, pending=False, rescheduled=2)
    assert again is not None
    assert again.action == "reschedule"
    replaced = repair_for(alert(), RunView(state), NOW, pending=False, rescheduled=3)
    assert replaced is not None
    assert replaced.action == "redispatch"


def test_a_run_running_far_longer_than_a_step_takes_has_lost_its_process() -> None:
    stuck = RunView("RUNNING", None, NOW - timedelta(minutes=10))
    busy = RunView("RUNNING", None, NOW - timedelta(seconds=20))
    repair = repair_for(alert(), stuck, NOW, pending=False)
    assert repair is not None
    assert repair.action == "reschedule"
    assert repair_for(alert(), busy, NOW, pending=False) is None


def test_an_alert_without_a_run_and_nothing_owed_by_the_dispatcher_is_dispatched() -> None:
    assert repair_for(alert(flow_run_id=None), RunView(), NOW, pending=False) == Repair(
        "redispatch", "the alert has no run")


def test_nothing_is_repaired_while_the_dispatcher_still_owes_the_alert_something() -> None:
    assert repair_for(alert(flow_run_id=None), RunView(), NOW, pending=True) is None


def test_a_wait_past_its_deadline_and_grace_is_woken_but_not_before() -> None:
    overdue = alert(ack_deadline=NOW - timedelta(minutes=5))
    recent = alert(ack_deadline=NOW - timedelta(seconds=10))
    paused = RunView("PAUSED", "acknowledge-0", NOW)
    assert repair_for(overdue, paused, NOW, pending=False) == Repair(
        "wake", "the acknowledge deadline passed and no one woke the run")
    assert repair_for(recent, paused, NOW, pending=False) is None


@pytest.mark.parametrize("state", ["PAUSED", "RUNNING", "SCHEDULED", "PENDING"])
def test_a_live_run_on_a_future_deadline_needs_nothing(state: str) -> None:
    healthy = alert(ack_deadline=NOW + timedelta(minutes=5))
    assert repair_for(healthy, RunView(state, "acknowledge-0", NOW), NOW, pending=False) is None


def test_a_resolve_wait_past_its_deadline_or_reminder_and_grace_is_woken() -> None:
    paused = RunView("PAUSED", "resolve-3", NOW)
    late = alert(status="acknowledged", resolve_deadline=NOW - timedelta(minutes=5))
    reminder = alert(status="acknowledged", resolve_deadline=NOW + timedelta(hours=1),
                     remind_at=NOW - timedelta(minutes=5))
    overdue = alert(status="acknowledged", resolve_deadline=NOW - timedelta(minutes=5),
                    overdue_at=NOW - timedelta(minutes=4))
    assert repair_for(late, paused, NOW, pending=False) == Repair(
        "wake", "the resolve deadline passed and no one woke the run")
    assert repair_for(reminder, paused, NOW, pending=False) == Repair(
        "wake", "the reminder time passed and no one woke the run")
    assert repair_for(overdue, paused, NOW, pending=False) is None, "marked overdue: done"
    assert repair_for(late, RunView("PAUSED", "acknowledge-3", NOW), NOW, pending=False) is None
