"""Who may act and which deadline applies, decided from a pinned policy alone."""

from __future__ import annotations

from datetime import timedelta

from axtrace import ownership
from axtrace.testing import pinned_policy
from axtrace_blocks import OwnershipPolicy
from tests.unit.conftest import POLICY

PINNED = pinned_policy()


def test_responders_at_a_level_include_every_earlier_level_once_in_chain_order() -> None:
    assert ownership.responders(PINNED, 1) == ["anna", "ben"]
    assert ownership.responders(PINNED, 2) == ["anna", "ben", "clara"]
    assert ownership.responders(PINNED, 3) == ["anna", "ben", "clara", "dora"]


def test_only_responders_at_the_current_or_an_earlier_level_may_act() -> None:
    assert ownership.may_act(PINNED, 1, "ben")
    assert not ownership.may_act(PINNED, 1, "clara"), "level 2 may not act at level 1"
    assert ownership.may_act(PINNED, 2, "ben"), "level 1 may still act after escalation"
    assert not ownership.may_act(PINNED, 3, "mallory")
    assert not ownership.may_act(PINNED, 3, None)


def test_acknowledge_deadline_is_the_levels_own_unless_the_severity_overrides_it() -> None:
    assert ownership.ack_window(PINNED, 1, "high") == timedelta(minutes=10)
    assert ownership.ack_window(PINNED, 3, "low") == timedelta(hours=1)
    assert ownership.ack_window(PINNED, 2, "critical") == timedelta(minutes=2)


def test_resolve_deadline_is_the_policys_unless_the_severity_overrides_it() -> None:
    assert ownership.resolve_window(PINNED, "medium") == timedelta(hours=4)
    assert ownership.resolve_window(PINNED, "critical") == timedelta(hours=1)


def test_the_policy_version_is_a_content_hash_equal_for_equal_policies() -> None:
    again = pinned_policy()
    changed = pinned_policy(owning_team="x")
    assert ownership.version(PINNED) == ownership.version(again)
    assert ownership.version(PINNED) != ownership.version(changed)
    assert len(ownership.version(PINNED)) == 12


def test_the_pinned_snapshot_round_trips_to_the_same_policy() -> None:
    assert ownership.parse(PINNED) == OwnershipPolicy.model_validate(POLICY)
    assert ownership.level_name(PINNED, 1) == "Line lead"
    assert ownership.level_name(PINNED, 3) == "level 3"


def test_a_level_is_reminded_at_its_own_interval_or_never() -> None:
    pinned = pinned_policy(levels={1: {"remind_every": "30m"}})
    assert ownership.remind_every(pinned, 1) == timedelta(minutes=30)
    assert ownership.remind_every(pinned, 2) is None


def test_a_policy_without_reminders_pins_no_reminder_and_keeps_its_version() -> None:
    assert all("remind_every" not in level for level in PINNED["escalation_chain"])
    assert ownership.remind_every(PINNED, 1) is None


def test_names_pinned_from_a_calendar_decide_who_may_act_at_their_level() -> None:
    pinned = {"escalation_chain": [{"responders": ["lead"], "oncall_calendar": "/a.ics"},
                                   {"responders": ["manager"]}]}
    on_call = {"1": ["carol"]}
    assert ownership.may_act(pinned, 1, "carol", on_call)
    assert not ownership.may_act(pinned, 1, "lead", on_call)  # the calendar did not fall back
    assert not ownership.may_act(pinned, 1, "dave", on_call)  # off shift: not pinned
    assert ownership.responders(pinned, 2, on_call) == ["carol", "manager"]
    assert ownership.responders(pinned, 2, {"1": []}) == ["manager"]  # level 1 skipped
    assert ownership.responders(pinned, 1) == ["lead"]  # alerts pinned before calendars


def test_a_policy_without_calendars_keeps_its_version() -> None:
    from axtrace_blocks import OwnershipPolicy

    policy = OwnershipPolicy(site="s", owning_team="t", resolve_within="1h",
                             escalation_chain=[{"responders": ["a"], "acknowledge_within": "5m"}])
    assert "oncall_calendar" not in ownership.snapshot(policy)["escalation_chain"][0]
