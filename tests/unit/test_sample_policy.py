"""The tests' sample policy (``axtrace.testing.make_policy``): a valid policy, a fresh copy each
time, changed only where a test says."""

from __future__ import annotations

from datetime import timedelta

from axtrace import ownership
from axtrace.testing import make_policy, pinned_policy
from axtrace_blocks import OwnershipPolicy


def test_the_sample_is_a_valid_three_level_policy_of_berlin_plant() -> None:
    policy = OwnershipPolicy.model_validate(make_policy())

    assert policy.site == "berlin-plant"
    assert [level.acknowledge_within for level in policy.escalation_chain] == [
        timedelta(minutes=10), timedelta(minutes=20), timedelta(hours=1)]
    assert policy.resolve_within == timedelta(hours=4)


def test_each_call_is_a_fresh_copy_a_test_may_change() -> None:
    first = make_policy()
    first["escalation_chain"][0]["responders"].append("mallory")

    assert make_policy()["escalation_chain"][0]["responders"] == ["anna", "ben"]


def test_levels_are_numbered_from_one_and_merged_field_by_field() -> None:
    policy = make_policy(levels={2: {"remind_every": "30m"}}, owning_team="Night shift")

    assert policy["owning_team"] == "Night shift"
    assert policy["escalation_chain"][1] == {
        "name": "Shift manager", "responders": ["clara", "anna"], "acknowledge_within": "20m",
        "remind_every": "30m"}
    assert "remind_every" not in policy["escalation_chain"][0]


def test_the_pinned_form_is_what_an_alert_carries() -> None:
    pinned = pinned_policy(levels={1: {"acknowledge_within": "5m"}})

    assert ownership.ack_window(pinned, 1, "high") == timedelta(minutes=5)
    assert ownership.version(pinned) != ownership.version(pinned_policy())
