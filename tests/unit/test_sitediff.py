"""Specification of ``diff(desired, current)``: what ``sites apply`` would change, per site and
field. Pure: the server side is given as plain states."""

from __future__ import annotations

from typing import Any

from axtrace.sitediff import Change, SiteState, diff, policy_fields
from axtrace.testing import make_policy
from axtrace_blocks import OwnershipPolicy
from tests.unit.conftest import POLICY


def policy(**changes: Any) -> dict[str, str]:
    return policy_fields(OwnershipPolicy.model_validate(make_policy(**changes)))


def state(version: str = "v1", **changes: Any) -> SiteState:
    return SiteState(policy(**changes), version, "Standard AxTrace response.")


def test_the_same_sites_on_both_sides_make_no_change() -> None:
    assert diff({"berlin-plant": state()}, {"berlin-plant": state()}) == []


def test_a_policy_reads_as_flat_fields_with_durations_as_the_file_writes_them() -> None:
    fields = policy()

    assert fields["owning_team"] == "Berlin line quality"
    assert fields["escalation_chain.0.responders"] == "anna, ben"
    assert fields["escalation_chain.1.acknowledge_within"] == "20m"
    assert fields["severity_overrides.critical.acknowledge_within"] == "2m"
    assert "notification_block" not in fields
    assert "site" not in fields


def test_a_policy_as_stored_data_reads_like_the_policy_itself() -> None:
    stored = OwnershipPolicy.model_validate(POLICY).model_dump(mode="json")

    assert policy_fields(OwnershipPolicy.model_validate(stored)) == policy()


def test_a_changed_deadline_is_one_change_naming_the_field_before_and_after() -> None:
    faster = make_policy(levels={1: {"acknowledge_within": "15m"}})["escalation_chain"]

    changes = diff({"berlin-plant": state(escalation_chain=faster)},
                   {"berlin-plant": state()})

    assert changes == [Change("berlin-plant", "changed",
                              "policy.escalation_chain.0.acknowledge_within", "10m", "15m")]
    assert str(changes[0]) == ("~ site 'berlin-plant': "
                               "policy.escalation_chain.0.acknowledge_within: 10m -> 15m")


def test_a_field_set_or_emptied_is_added_or_removed() -> None:
    changes = diff({"x": state(notification_block="slack-webhook/x", severity_overrides={})},
                   {"x": state()})

    assert [(c.kind, c.field) for c in changes] == [
        ("added", "policy.notification_block"),
        ("removed", "policy.severity_overrides.critical.acknowledge_within"),
        ("removed", "policy.severity_overrides.critical.resolve_within"),
    ]


def test_a_description_changed_by_the_policy_is_not_shown_again() -> None:
    want = SiteState(policy(owning_team="Night shift"), "v1", "Owner: Night shift.")
    have = SiteState(policy(), "v1", "Owner: Berlin line quality.")

    assert [c.field for c in diff({"x": want}, {"x": have})] == ["policy.owning_team"]


def test_a_description_changed_on_its_own_is_a_change() -> None:
    want = SiteState(policy(), "v1", "Presses 1-5.")

    assert [c.field for c in diff({"x": want}, {"x": state()})] == ["deployment.description"]


def test_a_new_deployment_version_is_a_change() -> None:
    changes = diff({"x": state("v2")}, {"x": state("v1")})

    assert changes == [Change("x", "changed", "deployment.version", "v1", "v2")]


def test_sites_added_in_the_file_and_removed_from_it_are_whole_site_changes() -> None:
    changes = diff({"new": state(), "kept": state()}, {"kept": state(), "gone": state()})

    assert changes == [Change("new", "added"), Change("gone", "removed")]
    assert str(changes[1]).startswith("- site 'gone': removed")


def test_a_missing_policy_block_or_deployment_shows_what_apply_would_create() -> None:
    no_block = diff({"x": state()}, {"x": SiteState(policy=None, version="v1")})
    no_deployment = diff({"x": state()}, {"x": SiteState(policy=policy())})

    assert {c.kind for c in no_block + no_deployment} == {"added"}
    assert "policy.owning_team" in {c.field for c in no_block}
    assert [c.field for c in no_deployment] == ["deployment.version", "deployment.description"]
