"""What the deadline auditor repairs, decided from an alert and its run's state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from axtrace.auditor import Repair, repair_for
from axtrace.ledger.models import Alert, utcnow

NOW = utcnow()


def alert(**fields: object) -> Alert:
    return Alert.model_validate({"site": "s", "key": "k", "title": "t", "received_at": NOW,
                                 "flow_run_id": "run-1", **fields})


@pytest.mark.parametrize("state", ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"])
def test_a_run_that_ended_before_its_alert_closed_is_dispatched_again(state: str) -> None:
    repair = repair_for(alert(), state, None, NOW, pending=False)
    assert repair is not None
    assert repair.action == "redispatch"
    assert state.lower() in repair.reason


def test_an_alert_without_a_run_and_nothing_owed_by_the_dispatcher_is_dispatched() -> None:
    assert repair_for(alert(flow_run_id=None), None, None, NOW, pending=False) == Repair(
        "redispatch", "the alert has no run")


def test_nothing_is_repaired_while_the_dispatcher_still_owes_the_alert_something() -> None:
    assert repair_for(alert(flow_run_id=None), None, None, NOW, pending=True) is None


def test_a_wait_past_its_deadline_and_grace_is_woken_but_not_before() -> None:
    overdue = alert(ack_deadline=NOW - timedelta(minutes=5))
    recent = alert(ack_deadline=NOW - timedelta(seconds=10))
    assert repair_for(overdue, "PAUSED", "acknowledge-0", NOW, pending=False) == Repair(
        "wake", "the acknowledge deadline passed and no one woke the run")
    assert repair_for(recent, "PAUSED", "acknowledge-0", NOW, pending=False) is None


@pytest.mark.parametrize("state", ["PAUSED", "RUNNING", "SCHEDULED", "PENDING"])
def test_a_live_run_on_a_future_deadline_needs_nothing(state: str) -> None:
    healthy = alert(ack_deadline=NOW + timedelta(minutes=5))
    assert repair_for(healthy, state, "acknowledge-0", NOW, pending=False) is None
