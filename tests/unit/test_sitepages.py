"""A site's page is assembled from plain values: who is on call, the policy now, the counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from axtrace import ownership
from axtrace.ledger.models import Alert
from axtrace.reports.model import PolicyChangeSeen
from axtrace.sitepages import counts_of, on_call_now, open_alert, policy_now, site_page, summary
from axtrace.testing import pinned_policy

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def change(version: str) -> PolicyChangeSeen:
    return PolicyChangeSeen(seq=1, site="berlin-plant", at=NOW, origin="sites apply",
                            actor="ops", new_version=version)


def test_on_call_at_a_level_are_its_own_responders_not_the_earlier_levels() -> None:
    assert on_call_now(pinned_policy(), 2, NOW).names == ["clara", "anna"]
    assert on_call_now(pinned_policy(), 2, NOW).source == "responders"


ROTA = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//t//EN
BEGIN:VEVENT
UID:1@t
DTSTART:20261130T080000Z
DTEND:20261130T200000Z
RRULE:FREQ=DAILY
SUMMARY:On call: olga
END:VEVENT
END:VCALENDAR
"""


def test_on_call_at_a_level_with_a_calendar_is_whoever_is_on_shift_now() -> None:
    from icalendar import Calendar

    chain = [{"responders": ["lead"], "oncall_calendar": "https://rota.example/t0k3n.ics",
              "oncall_name_pattern": "On call: (.+)", "acknowledge_within": "5m"}]
    policy = pinned_policy(escalation_chain=chain)
    calendars = {"https://rota.example/t0k3n.ics": Calendar.from_ical(ROTA)}
    now = on_call_now(policy, 1, NOW, calendars)
    assert (now.names, now.source, now.calendar) == (["olga"], "calendar",
                                                     "https://rota.example/...")
    night = on_call_now(policy, 1, NOW.replace(hour=22), calendars)
    assert (night.names, night.source) == (["lead"], "responders")
    assert night.detail == ("nobody on call at 2026-12-03T22:00:00+00:00; fell back to the "
                            "level's responders")
    unread = on_call_now(policy, 1, NOW, {"https://rota.example/t0k3n.ics": "ConnectError"})
    assert unread.detail == "calendar not read: ConnectError; fell back to the level's responders"


def test_the_policy_is_on_record_only_when_the_last_change_has_its_version() -> None:
    policy = pinned_policy()
    assert policy_now(policy, source="prefect", last=change(ownership.version(policy)),
                      now=NOW).on_record
    assert not policy_now(policy, source="prefect", last=change("other"), now=NOW).on_record
    assert not policy_now(policy, source="prefect", last=None, now=NOW).on_record


def test_levels_carry_their_deadline_and_reminder_in_seconds() -> None:
    reminded = pinned_policy(levels={1: {"remind_every": "30m"}})
    levels = policy_now(reminded, source="ledger", last=None, now=NOW).levels
    assert [(lv.name, lv.acknowledge_within_s, lv.remind_every_s) for lv in levels] == [
        ("Line lead", 600, 1800), ("Shift manager", 1200, None), ("level 3", 3600, None)]


def test_an_open_alert_names_its_level_and_who_may_act_from_its_own_pinned_policy() -> None:
    alert = Alert(id=7, site="berlin-plant", key="k", title="Crack", received_at=NOW,
                  status="open", level=3, policy=pinned_policy(),
                  ack_deadline=NOW + timedelta(hours=1))
    shown = open_alert(alert)
    assert (shown.level_name, shown.may_act, shown.ack_deadline) == (
        "level 3", ["anna", "ben", "clara", "dora"], NOW + timedelta(hours=1))
    unassigned = open_alert(Alert(id=8, site="berlin-plant", key="k2", title="Crack",
                                  received_at=NOW))
    assert (unassigned.level_name, unassigned.may_act) == (None, [])


def test_counts_add_up_groups_by_status_and_overdue() -> None:
    counts = counts_of([("open", False, 3), ("acknowledged", True, 2),
                        ("acknowledged", False, 1), ("ignored", False, 4)])
    assert counts.model_dump() == {"total": 10, "open": 3, "acknowledged": 3, "ignored": 4,
                                   "overdue": 2}


def test_a_site_without_a_policy_has_no_version_and_an_empty_page() -> None:
    assert summary("lyon", None, counts_of([])).policy_version is None
    page = site_page("lyon", pinned=None, last=None, alerts=[], now=NOW)
    assert (page.policy, page.open_alerts, page.counts.total) == (None, [], 0)
