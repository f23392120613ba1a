"""The response's decisions: what comes next, and how each answer is taken."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from axtrace import ownership, workflow
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import Alert, AlertCreate, Status, utcnow
from axtrace.testing import wait_until
from axtrace.workflow import Answer, Phase
from axtrace_blocks import OwnershipPolicy
from tests.unit.conftest import POLICY


def assigned_alert(ledger: str, *, level: int = 1, overdue: bool = False) -> int:
    pinned = ownership.snapshot(OwnershipPolicy.model_validate(POLICY))
    with Session(engine_for(ledger)) as session:
        alert = repo.create_alert(session=session, actor="t", dispatch=False,
                                  alert=AlertCreate(site="berlin-plant", key="k", title="x"))
        alert.policy, alert.level, alert.notified_level = pinned, level, level
        shift = timedelta(seconds=-30 if overdue else 600)
        alert.ack_deadline = utcnow() + shift
        session.add(alert)
        session.commit()
        assert alert.id is not None
        return alert.id


def load(alert_id: int) -> Alert:
    return workflow.load_alert(alert_id)


@pytest.mark.parametrize(("fields", "phase"), [
    ({"status": "open", "level": 0}, Phase.ASSIGN),
    ({"status": "open", "level": 2, "notified_level": 1}, Phase.NOTIFY),
    ({"status": "open", "level": 1, "notified_level": 1}, Phase.ACKNOWLEDGE),
    ({"status": "acknowledged", "level": 1, "notified_level": 1}, Phase.RESOLVE),
    ({"status": "ignored", "level": 3, "notified_level": 3}, Phase.RESOLVE),
    ({"status": "resolved", "level": 1, "notified_level": 1}, Phase.CLOSE),
    ({"status": "closed", "level": 1, "notified_level": 1}, Phase.DONE),
])
def test_the_next_phase_follows_from_where_the_alert_stands(
    fields: dict[str, Any], phase: Phase,
) -> None:
    alert = Alert(site="s", key="k", title="t", received_at=utcnow(), **fields)
    assert workflow.decide(alert) is phase


def test_the_pause_key_names_the_phase_and_the_answers_taken_so_far() -> None:
    alert = Alert(site="s", key="k", title="t", received_at=utcnow(), wait_seq=3)
    assert workflow.pause_key(alert, Phase.ACKNOWLEDGE) == "acknowledge-3"


def test_a_responder_at_the_level_acknowledges(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="ben"))
    alert = load(alert_id)
    assert step == "acknowledged"
    assert (alert.status, alert.acknowledged_by, alert.ack_deadline) == ("acknowledged", "ben",
                                                                         None)


def test_each_step_taken_emits_one_prefect_event_about_the_alert_and_its_site(
    ledger: str, events: Any,
) -> None:
    alert_id = assigned_alert(ledger)
    workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="ben"))

    def emitted_so_far() -> list[Any]:
        events.drain()  # the worker sends from its own thread: wait for it, briefly
        client = getattr(events, "_client", None)
        found = client.events if client is not None else []
        return [e for e in found if e.event.startswith("axtrace.alert.")]

    emitted = wait_until(emitted_so_far, timeout=20, interval=0.2, what="the event sent")
    assert [e.event for e in emitted] == ["axtrace.alert.acknowledged"]
    assert emitted[0].resource.id == f"axtrace.alert.{alert_id}"
    assert emitted[0].resource["axtrace.site"] == "berlin-plant"
    assert {r.id: r.role for r in emitted[0].related}["axtrace.site.berlin-plant"] == "site"
    assert emitted[0].payload["actor"] == "ben"


def test_an_answer_is_taken_once_even_when_the_run_replays(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="ben"))
    again = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="anna"))
    with Session(engine_for(ledger)) as session:
        steps = [e.step for e in repo.trace_of(session=session, alert_id=alert_id)]
    assert again is None  # nothing taken
    assert steps == ["received", "acknowledged"]
    assert load(alert_id).acknowledged_by == "ben"


def test_someone_not_in_the_chain_is_refused_and_the_alert_stays_open(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="mallory"))
    alert = load(alert_id)
    assert step == "refused"
    assert alert.status == Status.OPEN
    assert alert.wait_seq == 1


def test_an_empty_answer_before_the_deadline_is_refused_not_escalated(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer())
    assert step == "refused"
    assert load(alert_id).level == 1


def test_the_deadline_wake_escalates_to_the_next_level_with_its_own_deadline(ledger: str) -> None:
    alert_id = assigned_alert(ledger, overdue=True)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer())
    alert = load(alert_id)
    assert step == "escalated"
    assert alert.level == 2
    assert alert.notified_level == 1
    assert alert.ack_deadline is not None
    assert timedelta(minutes=19) < alert.ack_deadline - utcnow() <= timedelta(minutes=20)
    assert workflow.decide(alert) is Phase.NOTIFY


def test_the_last_levels_deadline_marks_the_alert_ignored_and_open_for_resolution(
    ledger: str,
) -> None:
    alert_id = assigned_alert(ledger, level=3, overdue=True)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer())
    alert = load(alert_id)
    assert step == "ignored"
    assert alert.status == Status.IGNORED
    assert workflow.decide(alert) is Phase.RESOLVE


def test_an_acknowledgement_given_after_the_deadline_is_recorded_as_late(ledger: str) -> None:
    alert_id = assigned_alert(ledger, overdue=True)
    workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="anna"))
    with Session(engine_for(ledger)) as session:
        last = repo.trace_of(session=session, alert_id=alert_id)[-1]
    assert last.step == "acknowledged"
    assert last.detail["late_by_s"] >= 30


def test_a_resolution_needs_an_outcome(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="anna"))
    refused = workflow.take_answer(alert_id, Phase.RESOLVE, 1, Answer(responder="anna"))
    resolved = workflow.take_answer(alert_id, Phase.RESOLVE, 2,
                                    Answer(responder="anna", outcome="fixed"))
    assert (refused, resolved) == ("refused", "resolved")
    assert load(alert_id).outcome == "fixed"


def test_the_workflow_version_is_the_package_version_and_a_hash_of_the_code() -> None:
    version = workflow.workflow_version()
    assert version.startswith("0.1.0+")
    assert len(version.split("+")[1]) == 10
