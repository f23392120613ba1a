"""Maintenance windows: which window holds an alert back and until when (pure), how a window
is checked, and what a suppressed alert's run does when it is woken."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import Session

from axtrace import maintenance, ownership, workflow
from axtrace.auditor import RunView, repair_for
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import Alert, AlertCreate, utcnow
from axtrace.reports.verify import implied_steps
from axtrace.sitefile import check
from axtrace.workflow import Answer, Phase
from axtrace_blocks import MaintenanceWindow, OwnershipPolicy
from tests.unit.conftest import POLICY


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def window(**fields: Any) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(fields)


ONCE = window(start="2026-12-06T02:00:00Z", end="2026-12-06T04:00:00Z", reason="kiln swap")
SUNDAYS = window(rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", duration="2h", reason="backups")
"""Every Sunday 02:00-04:00 UTC (2026-12-06 is a Sunday)."""


# --------------------------------------------------------------------------- the decision


@pytest.mark.parametrize(("moment", "inside"), [
    ("2026-12-06T01:59:59Z", False), ("2026-12-06T02:00:00Z", True),
    ("2026-12-06T03:59:59Z", True), ("2026-12-06T04:00:00Z", False),
    ("2026-12-06T03:00:00+01:00", True), ("2026-12-06T05:00:00+01:00", False),
])
def test_a_one_off_window_holds_from_its_start_up_to_not_including_its_end(
    moment: str, inside: bool,
) -> None:
    assert (maintenance.occurrence(ONCE, at(moment)) is not None) is inside


@pytest.mark.parametrize(("moment", "start"), [
    ("2026-12-06T02:00:00Z", "2026-12-06T02:00:00Z"),
    ("2026-12-06T03:59:59Z", "2026-12-06T02:00:00Z"),
    ("2026-12-13T02:30:00Z", "2026-12-13T02:00:00Z"),
    ("2027-03-28T03:00:00Z", "2027-03-28T02:00:00Z"),  # the night Europe moves its clocks
    ("2026-12-06T04:00:00Z", None), ("2026-12-06T01:59:59Z", None),
    ("2026-12-07T02:30:00Z", None),  # a Monday
])
def test_a_recurring_window_repeats_in_utc_whatever_daylight_saving_does(
    moment: str, start: str | None,
) -> None:
    found = maintenance.occurrence(SUNDAYS, at(moment))
    expected = None if start is None else (at(start), at(start) + timedelta(hours=2))
    assert found == expected


def test_a_recurring_window_repeats_in_the_offset_of_its_dtstart() -> None:
    paris_winter = timezone(timedelta(hours=1))
    local = window(rrule="FREQ=DAILY;BYHOUR=2", duration="30m",
                   dtstart=datetime(2026, 1, 1, tzinfo=paris_winter))
    assert maintenance.occurrence(local, at("2026-07-01T01:10:00Z")) == (
        at("2026-07-01T02:00:00+01:00"), at("2026-07-01T02:30:00+01:00"))
    assert maintenance.occurrence(local, at("2026-07-01T02:10:00Z")) is None


def test_a_recurring_window_ends_with_its_rule() -> None:
    twice = window(rrule="FREQ=DAILY;COUNT=2;BYHOUR=2", duration="1h",
                   dtstart="2026-12-01T00:00:00Z")
    assert maintenance.occurrence(twice, at("2026-12-02T02:30:00Z")) is not None
    assert maintenance.occurrence(twice, at("2026-12-03T02:30:00Z")) is None


def test_an_alert_received_in_a_window_is_held_until_its_end_with_which_window_and_why() -> None:
    held = maintenance.hold([SUNDAYS, ONCE], at("2026-12-06T03:00:00Z"),
                            now=at("2026-12-06T03:00:05Z"))
    assert held == maintenance.Hold(0, at("2026-12-06T02:00:00Z"), at("2026-12-06T04:00:00Z"),
                                    "backups")
    assert held.detail()["until"] == at("2026-12-06T04:00:00Z")


def test_an_alert_received_outside_every_window_is_not_held() -> None:
    assert maintenance.hold([SUNDAYS, ONCE], at("2026-12-06T04:00:00Z"),
                            now=at("2026-12-06T04:00:00Z")) is None
    assert maintenance.hold([], at("2026-12-06T03:00:00Z"), now=at("2026-12-06T03:00:00Z")) is None


def test_overlapping_and_touching_windows_hold_an_alert_until_the_last_one_ends() -> None:
    longer = window(start="2026-12-06T03:00:00Z", end="2026-12-06T05:00:00Z", reason="longer")
    touching = window(start="2026-12-06T05:00:00Z", end="2026-12-06T06:00:00Z")
    held = maintenance.hold([ONCE, longer, touching], at("2026-12-06T02:30:00Z"),
                            now=at("2026-12-06T02:30:00Z"))
    assert held is not None
    assert (held.window, held.reason) == (0, "kiln swap"), "the window it was received in"
    assert held.until == at("2026-12-06T06:00:00Z")


def test_a_window_that_ended_before_the_alert_was_assigned_holds_nothing_back() -> None:
    assert maintenance.hold([ONCE], at("2026-12-06T03:59:00Z"),
                            now=at("2026-12-06T04:00:00Z")) is None


# --------------------------------------------------------------------------- checking windows


@pytest.mark.parametrize(("fields", "field", "says"), [
    ({"start": "2026-12-06T04:00:00Z", "end": "2026-12-06T02:00:00Z"}, "end",
     "ends (2026-12-06T02:00:00+00:00) before it starts (2026-12-06T04:00:00+00:00)"),
    ({"start": "2026-12-06T04:00:00Z", "end": "2026-12-06T04:00:00Z"}, "end", "before it starts"),
    ({"rrule": "FREQ=SOMETIMES", "duration": "1h"}, "rrule", "FREQ=SOMETIMES"),
    ({"rrule": "FREQ=WEEKLY;BYDAY=XX", "duration": "1h"}, "rrule", "not valid RFC 5545"),
    ({"rrule": "BYDAY=SU", "duration": "1h"}, "rrule", "exactly one FREQ="),
    ({"rrule": "FREQ=DAILY;FREQ=HOURLY", "duration": "1h"}, "rrule", "exactly one FREQ="),
    ({"rrule": "FREQ=DAILY;INTERVAL=0", "duration": "1h"}, "rrule", "INTERVAL=0 must be"),
    ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "duration": "1h"}, "rrule",
     "no occurrence in the 1464 days from 2000-01-01T00:00:00+00:00"),
    ({"rrule": "FREQ=DAILY\nEXDATE:20261206T000000Z", "duration": "1h"}, "rrule",
     "one RRULE, without EXDATE or RDATE"),
    ({"rrule": "FREQ=HOURLY", "duration": "1h"}, "rrule", "too often"),
    ({"rrule": "FREQ=DAILY", "duration": "0s"}, "duration", "longer than zero"),
    ({"start": "2026-12-06T04:00:00", "end": "2026-12-06T05:00:00Z"}, "start", "timezone"),
    ({"start": "2026-12-06T04:00:00Z", "end": "2026-12-06T05:00:00Z", "rrule": "FREQ=DAILY"},
     "", "either start/end or rrule/duration"),
    ({"rrule": "FREQ=DAILY"}, "", "duration missing"),
    ({"start": "2026-12-06T04:00:00Z"}, "", "end missing"),
    ({"reason": "nothing else"}, "", "needs start and end, or rrule and duration"),
    ({"start": "2026-12-06T04:00:00Z", "end": "2026-12-06T05:00:00Z", "ends": "x"}, "ends",
     "Extra inputs"),
])
def test_a_bad_window_is_refused_naming_the_field_and_why(
    fields: dict[str, Any], field: str, says: str,
) -> None:
    with pytest.raises(ValidationError) as refused:
        MaintenanceWindow.model_validate(fields)
    [error] = refused.value.errors()
    assert ".".join(str(p) for p in error["loc"]) == field
    assert says in error["msg"]


SITES = """\
sites:
  berlin-plant:
    policy:
      owning_team: Berlin line quality
      escalation_chain:
        - responders: [anna]
          acknowledge_within: 15m
      resolve_within: 4h
      maintenance:
        - rrule: FREQ=WEEKLY;BYDAY=SU;BYHOUR=2
          duration: 2h
          reason: backups
        - start: 2026-12-06T04:00:00Z
          end: 2026-12-06T02:00:00Z
"""


def test_the_sites_file_names_site_window_and_field_of_a_window_that_ends_before_it_starts(
) -> None:
    [problem] = check(SITES, "sites.yaml")
    assert problem.field == "policy.maintenance.1.end"
    assert problem.message.startswith(
        "site 'berlin-plant': policy.maintenance.1.end: the window ends")
    assert problem.line == 14


@pytest.mark.parametrize(("old", "new", "field", "says"), [
    ("FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "FREQ=WEEKLY;BYDAY=SUNDAY", "policy.maintenance.0.rrule",
     "not valid RFC 5545"),
    ("duration: 2h", "duraton: 2h", "policy.maintenance.0.duraton",
     "unknown field; did you mean 'duration'?"),
])
def test_the_sites_file_names_a_bad_rule_and_a_misspelled_key(
    old: str, new: str, field: str, says: str,
) -> None:
    text = SITES.replace(old, new).replace("end: 2026-12-06T02", "end: 2026-12-06T05")
    problems = check(text, "sites.yaml")
    assert any(p.field == field and says in p.message
               and p.message.startswith("site 'berlin-plant': ") for p in problems), problems


def test_a_policy_without_windows_keeps_its_version_and_one_with_windows_round_trips() -> None:
    plain = ownership.snapshot(OwnershipPolicy.model_validate(POLICY))
    assert "maintenance" not in plain
    held = ownership.snapshot(OwnershipPolicy.model_validate(
        {**POLICY, "maintenance": [SUNDAYS.model_dump(), ONCE.model_dump()]}))
    assert ownership.parse(held).maintenance == [SUNDAYS, ONCE]
    assert ownership.version(held) != ownership.version(plain)


# --------------------------------------------------------------------------- the run


def suppressed_alert(ledger: str, *, until_in: float, key: str = "k") -> int:
    """An alert assigned to level 1 and suppressed by a window ending ``until_in`` s from now."""
    pinned = ownership.snapshot(OwnershipPolicy.model_validate(POLICY))
    with Session(engine_for(ledger)) as session:
        alert = repo.create_alert(session=session, actor="t", dispatch=False,
                                  alert=AlertCreate(site="berlin-plant", key=key, title="x"))
        alert.policy, alert.level = pinned, 1
        alert.suppressed_until = utcnow() + timedelta(seconds=until_in)
        session.add(alert)
        session.commit()
        assert alert.id is not None
        return alert.id


def test_a_suppressed_alert_waits_for_its_release_with_no_deadline_running(ledger: str) -> None:
    alert = workflow.load_alert(suppressed_alert(ledger, until_in=600))
    assert workflow.decide(alert) is Phase.SUPPRESSED
    assert workflow.pause_key(alert, Phase.SUPPRESSED) == "suppressed-0"
    assert (alert.ack_deadline, alert.resolve_deadline) == (None, None)
    assert workflow.wake_at(alert) == alert.suppressed_until
    assert workflow.deadline_step(alert, utcnow()) is None
    assert workflow.deadline_step(alert, alert.suppressed_until or utcnow()) == "released"
    assert implied_steps(alert) >= {"received", "assigned", "suppressed"}


def test_the_wake_at_the_windows_end_releases_it_with_fresh_deadlines_then_notifies_level_1(
    ledger: str,
) -> None:
    alert_id = suppressed_alert(ledger, until_in=-5)
    before = utcnow()

    step = workflow.take_answer(alert_id, Phase.SUPPRESSED, 0, Answer())

    alert = workflow.load_alert(alert_id)
    with Session(engine_for(ledger)) as session:
        released = list(repo.trace_of(session=session, alert_id=alert_id))[-1]
    assert step == "released"
    assert released.detail["late_by_s"] >= 5
    assert alert.suppressed_until is None
    assert alert.ack_deadline is not None
    assert alert.resolve_deadline is not None
    assert timedelta(minutes=10) <= alert.ack_deadline - before < timedelta(minutes=10, seconds=5)
    assert timedelta(hours=4) <= alert.resolve_deadline - before < timedelta(hours=4, seconds=5)
    assert workflow.decide(alert) is Phase.NOTIFY
    assert workflow.notify(alert_id)["level"] == 1


def test_an_early_wake_or_someone_answering_a_suppressed_run_changes_nothing(
    ledger: str,
) -> None:
    alert_id = suppressed_alert(ledger, until_in=600)
    assert workflow.take_answer(alert_id, Phase.SUPPRESSED, 0, Answer()) == "refused"
    assert workflow.take_answer(alert_id, Phase.SUPPRESSED, 1, Answer(responder="anna")) == (
        "refused")
    alert = workflow.load_alert(alert_id)
    assert (alert.status, alert.level, alert.notified_level) == ("open", 1, 0)
    assert alert.suppressed_until is not None


def test_a_resolve_from_the_source_during_the_window_closes_it_without_a_notification(
    ledger: str,
) -> None:
    alert_id = suppressed_alert(ledger, until_in=600)
    with Session(engine_for(ledger)) as session:
        alert = repo.get_alert(session=session, alert_id=alert_id)
        alert.source_resolved_at = utcnow()
        session.add(alert)
        session.commit()
    assert workflow.decide(workflow.load_alert(alert_id)) is Phase.SOURCE_RESOLVE
    assert workflow.take_answer(alert_id, Phase.SUPPRESSED, 0, Answer()) is None
    workflow.resolve_at_source(alert_id)
    workflow.close(alert_id)
    with Session(engine_for(ledger)) as session:
        steps = [e.step for e in repo.trace_of(session=session, alert_id=alert_id)]
    assert steps == ["received", "resolved", "closed"]
    assert workflow.load_alert(alert_id).status == "closed"


def test_the_ledger_finds_a_suppressed_alert_only_once_its_window_ended(ledger: str) -> None:
    ended = suppressed_alert(ledger, until_in=-1, key="a")
    pending = suppressed_alert(ledger, until_in=600, key="b")
    with Session(engine_for(ledger)) as session:
        for alert_id in (ended, pending):
            alert = repo.get_alert(session=session, alert_id=alert_id)
            alert.flow_run_id = f"run-{alert_id}"
            session.add(alert)
        session.commit()
        found = {a.id for a in repo.due_waits(session=session, now=utcnow())}
    assert found == {ended}


def test_the_auditor_leaves_a_suppressed_run_alone_until_its_window_is_long_over() -> None:
    now = utcnow()
    pinned = ownership.snapshot(OwnershipPolicy.model_validate(POLICY))

    def suppressed(until: datetime) -> Alert:
        return Alert(site="s", key="k", title="t", received_at=now - timedelta(hours=2),
                     status="open", level=1, policy=pinned, flow_run_id="run-1",
                     suppressed_until=until)

    paused = RunView("PAUSED", "suppressed-0", now - timedelta(hours=2))
    assert repair_for(suppressed(now + timedelta(hours=1)), paused, now, pending=False) is None
    assert repair_for(suppressed(now - timedelta(seconds=30)), paused, now,
                      pending=False) is None, "the sweeper's turn first"
    late = repair_for(suppressed(now - timedelta(minutes=5)), paused, now, pending=False)
    assert late is not None
    assert (late.action, late.reason) == (
        "wake", "the maintenance window's end passed and no one woke the run")

