"""Specification of the ``OwnershipPolicy`` block: what parses, what is refused and why,
and what the Prefect UI gets to render as a form. Pure and fast: no server, no network.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import ValidationError

from axtrace_blocks import SEVERITIES, DeadlineOverride, EscalationLevel, OwnershipPolicy


def policy_data(**changes: Any) -> dict[str, Any]:
    """A valid policy as a user would type it, with ``changes`` applied."""
    data: dict[str, Any] = {
        "site": "berlin-plant",
        "owning_team": "line-3-quality",
        "escalation_chain": [
            {"name": "Line lead", "responders": ["anna", "ben"], "acknowledge_within": "15m"},
            {"name": "Plant manager", "responders": ["carla"], "acknowledge_within": "1h"},
        ],
        "resolve_within": "4h",
    }
    data.update(changes)
    return data


def level(acknowledge_within: Any = "15m", responders: list[str] | None = None) -> dict[str, Any]:
    return {
        "responders": ["anna"] if responders is None else responders,
        "acknowledge_within": acknowledge_within,
    }


def only_error(exc_info: pytest.ExceptionInfo[ValidationError]) -> dict[str, Any]:
    """The single error of a ValidationError, so a test also proves nothing else failed."""
    errors = exc_info.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


# --- what parses ------------------------------------------------------------------------------


def test_a_valid_policy_parses_into_typed_levels_and_durations() -> None:
    policy = OwnershipPolicy(
        **policy_data(severity_overrides={"critical": {"acknowledge_within": "5m"}})
    )

    assert policy.site == "berlin-plant"
    assert policy.owning_team == "line-3-quality"
    assert policy.escalation_chain == [
        EscalationLevel(
            name="Line lead", responders=["anna", "ben"], acknowledge_within=timedelta(minutes=15)
        ),
        EscalationLevel(
            name="Plant manager", responders=["carla"], acknowledge_within=timedelta(hours=1)
        ),
    ]
    assert policy.resolve_within == timedelta(hours=4)
    assert policy.severity_overrides == {
        "critical": DeadlineOverride(acknowledge_within=timedelta(minutes=5))
    }
    assert policy.notification_block is None


def test_optional_fields_default_to_no_overrides_no_notification_and_unnamed_levels() -> None:
    policy = OwnershipPolicy(**policy_data(escalation_chain=[level()]))

    assert policy.severity_overrides == {}
    assert policy.notification_block is None
    assert policy.escalation_chain[0].name == ""


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param("30s", timedelta(seconds=30), id="seconds-shorthand"),
        pytest.param("15m", timedelta(minutes=15), id="minutes-shorthand"),
        pytest.param("2h", timedelta(hours=2), id="hours-shorthand"),
        pytest.param("1d", timedelta(days=1), id="days-shorthand"),
        pytest.param("1.5h", timedelta(minutes=90), id="fractional-shorthand"),
        pytest.param(" 15m ", timedelta(minutes=15), id="shorthand-with-spaces"),
        pytest.param("PT15M", timedelta(minutes=15), id="iso-8601"),
        pytest.param("P1DT2H", timedelta(days=1, hours=2), id="iso-8601-days-and-hours"),
        pytest.param(900, timedelta(minutes=15), id="integer-seconds"),
        pytest.param(timedelta(minutes=15), timedelta(minutes=15), id="timedelta"),
    ],
)
def test_durations_accept_shorthand_iso_8601_and_integer_seconds(
    written: Any, expected: timedelta
) -> None:
    policy = OwnershipPolicy(
        **policy_data(
            escalation_chain=[level(acknowledge_within=written)],
            resolve_within=written,
            severity_overrides={"high": {"acknowledge_within": written, "resolve_within": written}},
        )
    )

    assert policy.escalation_chain[0].acknowledge_within == expected
    assert policy.resolve_within == expected
    assert policy.severity_overrides["high"].acknowledge_within == expected
    assert policy.severity_overrides["high"].resolve_within == expected


@pytest.mark.parametrize("written", ["15 minutes", "15M", "abc", ""])
def test_an_unreadable_duration_is_refused_at_its_field(written: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(resolve_within=written))

    error = only_error(exc_info)
    assert error["loc"] == ("resolve_within",)
    assert error["type"] == "time_delta_parsing"


def test_every_severity_may_be_overridden() -> None:
    overrides = {severity: {"resolve_within": "1h"} for severity in SEVERITIES}

    policy = OwnershipPolicy(**policy_data(severity_overrides=overrides))

    assert set(policy.severity_overrides) == {"critical", "high", "medium", "low"}


def test_responder_names_are_stripped_of_surrounding_spaces() -> None:
    policy = OwnershipPolicy(**policy_data(escalation_chain=[level(responders=[" anna ", "ben"])]))

    assert policy.escalation_chain[0].responders == ["anna", "ben"]


@pytest.mark.parametrize("site", ["berlin-plant", "plant7", "7", "a" * 63])
def test_a_site_slug_of_lowercase_letters_digits_and_hyphens_is_accepted(site: str) -> None:
    assert OwnershipPolicy(**policy_data(site=site)).site == site


# --- what is refused, and where -------------------------------------------------------------


def test_an_empty_escalation_chain_is_refused() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(escalation_chain=[]))

    error = only_error(exc_info)
    assert error["loc"] == ("escalation_chain",)
    assert "escalation_chain needs at least one level" in error["msg"]


@pytest.mark.parametrize("deadline", ["0s", "PT0S", 0, -60], ids=["0s", "PT0S", "0", "-60"])
def test_an_acknowledge_deadline_of_zero_or_less_is_refused_at_its_level(deadline: Any) -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(
            **policy_data(escalation_chain=[level(), level(acknowledge_within=deadline)])
        )

    error = only_error(exc_info)
    assert error["loc"] == ("escalation_chain", 1, "acknowledge_within")
    assert "acknowledge_within must be longer than zero" in error["msg"]


@pytest.mark.parametrize("deadline", ["0s", "PT0S", 0, -60], ids=["0s", "PT0S", "0", "-60"])
def test_a_resolve_deadline_of_zero_or_less_is_refused(deadline: Any) -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(resolve_within=deadline))

    error = only_error(exc_info)
    assert error["loc"] == ("resolve_within",)
    assert "resolve_within must be longer than zero" in error["msg"]


def test_the_refusal_of_a_non_positive_deadline_shows_the_value_given() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(resolve_within=-60))

    assert "got -60s" in only_error(exc_info)["msg"]


@pytest.mark.parametrize("field", ["acknowledge_within", "resolve_within"])
@pytest.mark.parametrize("deadline", ["0s", -60], ids=["0s", "-60"])
def test_a_severity_override_deadline_of_zero_or_less_is_refused_at_its_severity(
    field: str, deadline: Any
) -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(severity_overrides={"critical": {field: deadline}}))

    error = only_error(exc_info)
    assert error["loc"] == ("severity_overrides", "critical", field)
    assert f"{field} must be longer than zero" in error["msg"]


def test_a_responder_listed_twice_in_a_level_is_refused() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(
            **policy_data(escalation_chain=[level(), level(responders=["carla", "dan", "carla"])])
        )

    error = only_error(exc_info)
    assert error["loc"] == ("escalation_chain", 1, "responders")
    assert "responder 'carla' is listed twice" in error["msg"]


def test_a_responder_differing_only_by_surrounding_spaces_counts_as_listed_twice() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(escalation_chain=[level(responders=["anna", " anna"])]))

    assert "responder 'anna' is listed twice" in only_error(exc_info)["msg"]


def test_the_same_responder_may_appear_on_different_levels() -> None:
    policy = OwnershipPolicy(
        **policy_data(escalation_chain=[level(responders=["anna"]), level(responders=["anna"])])
    )

    assert [lvl.responders for lvl in policy.escalation_chain] == [["anna"], ["anna"]]


@pytest.mark.parametrize("blank", ["", "   "], ids=["empty", "spaces"])
def test_an_empty_responder_name_is_refused(blank: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(escalation_chain=[level(responders=["anna", blank])]))

    error = only_error(exc_info)
    assert error["loc"] == ("escalation_chain", 0, "responders")
    assert "responders must not contain an empty name" in error["msg"]


def test_a_level_without_responders_or_an_on_call_calendar_is_refused() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(escalation_chain=[level(responders=[])]))

    error = only_error(exc_info)
    assert error["loc"] == ("escalation_chain", 0)
    assert "a level needs responders, an oncall_calendar, or both" in error["msg"]


def test_a_level_may_have_an_on_call_calendar_instead_of_responders() -> None:
    policy = OwnershipPolicy(**policy_data(escalation_chain=[level(responders=[]) | {
        "oncall_calendar": "https://oncall.example/feed.ics",
        "oncall_name_pattern": "On call: (.+)"}]))

    assert policy.escalation_chain[0].oncall_calendar == "https://oncall.example/feed.ics"


def test_an_unknown_severity_in_the_overrides_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(severity_overrides={"urgent": {"resolve_within": "1h"}}))

    error = only_error(exc_info)
    assert error["loc"] == ("severity_overrides",)
    assert "unknown severity 'urgent'" in error["msg"]
    assert "expected one of critical, high, medium, low" in error["msg"]


@pytest.mark.parametrize(
    "site",
    ["Berlin Plant", "a/b", "berlin_plant", "-berlin", "", "a" * 64, "berlin\n"],
    ids=[
        "spaces-and-capitals",
        "slash",
        "underscore",
        "leading-hyphen",
        "empty",
        "too-long",
        "trailing-newline",
    ],
)
def test_a_site_that_is_not_a_slug_is_refused_with_an_example_of_one(site: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(site=site))

    error = only_error(exc_info)
    assert error["loc"] == ("site",)
    assert "site must be a slug of lowercase letters, digits and hyphens" in error["msg"]
    assert "'berlin-plant'" in error["msg"]
    assert repr(site) in error["msg"]


def test_an_empty_owning_team_is_refused() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(owning_team=""))

    assert only_error(exc_info)["loc"] == ("owning_team",)


def test_an_unknown_field_in_a_level_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(escalation_chain=[{**level(), "acknowledge_whithin": "5m"}]))

    error = only_error(exc_info)
    assert error["loc"] == ("escalation_chain", 0, "acknowledge_whithin")
    assert error["type"] == "extra_forbidden"


def test_an_unknown_field_in_the_policy_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(notification_blok="slack-webhook/berlin-ops"))

    error = only_error(exc_info)
    assert error["loc"] == ("notification_blok",)
    assert error["type"] == "extra_forbidden"


def test_an_unknown_field_in_a_severity_override_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(severity_overrides={"critical": {"resolve_whithin": "1h"}}))

    error = only_error(exc_info)
    assert error["loc"] == ("severity_overrides", "critical", "resolve_whithin")
    assert error["type"] == "extra_forbidden"


def test_a_misspelled_severity_is_refused_with_the_closest_one_and_named_in_the_context() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(severity_overrides={"critcal": {"resolve_within": "1h"}}))

    error = only_error(exc_info)
    assert error["type"] == "unknown_severity"
    assert "did you mean 'critical'?" in error["msg"]
    assert error["ctx"]["severity"] == "critcal"


def test_a_policy_dumped_by_prefect_validates_again_despite_its_block_type_slug() -> None:
    policy = OwnershipPolicy(**policy_data())

    assert OwnershipPolicy.model_validate(policy.model_dump()) == policy


def test_each_problem_is_reported_at_once_so_a_form_can_show_them_together() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(
            **policy_data(site="Berlin Plant", resolve_within="0s", severity_overrides={"x": {}})
        )

    locs = {error["loc"] for error in exc_info.value.errors()}
    assert locs == {("site",), ("resolve_within",), ("severity_overrides",)}


# --- the Prefect block contract ---------------------------------------------------------------


class TestOwnershipPolicyStandard(BlockStandardTestSuite):
    """Prefect's own checks for a published block type: description, documentation URL,
    a described field everywhere, and a code example that loads the block."""

    @pytest.fixture
    def block(self) -> type[Block]:
        return OwnershipPolicy

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        """Prefect's version fetches the logo over the network, which tests here do not have.
        OwnershipPolicy sets none (the UI shows Prefect's default icon), so there is nothing
        to fetch: a logo added later must come with a test that needs no network."""
        assert block._logo_url is None


def block_schema_fields() -> dict[str, Any]:
    schema = OwnershipPolicy._to_block_schema()
    return dict(schema.fields)


def test_the_block_type_is_registered_as_axtrace_ownership_policy() -> None:
    block_type = OwnershipPolicy._to_block_type()

    assert OwnershipPolicy.get_block_type_slug() == "axtrace-ownership-policy"
    assert block_type.slug == "axtrace-ownership-policy"
    assert block_type.name.startswith("AxTrace")
    assert block_type.description
    assert block_type.code_example
    assert 'OwnershipPolicy.load("BLOCK_NAME")' in block_type.code_example


def test_the_ui_form_offers_every_policy_field_in_declaration_order() -> None:
    fields = block_schema_fields()

    assert fields["block_type_slug"] == "axtrace-ownership-policy"
    properties = fields["properties"]
    assert list(properties) == [
        "site",
        "owning_team",
        "escalation_chain",
        "resolve_within",
        "severity_overrides",
        "notification_block",
        "notification_template",
        "allow_mass_mentions",
        "maintenance",
        "detectors",
    ]
    assert [properties[name]["position"] for name in properties] == list(range(10))
    assert set(fields["required"]) == {"site", "owning_team", "escalation_chain", "resolve_within"}
    assert fields["secret_fields"] == []


def test_the_ui_form_renders_the_escalation_chain_as_a_list_of_levels() -> None:
    fields = block_schema_fields()

    chain = fields["properties"]["escalation_chain"]
    assert chain["type"] == "array"
    ref = chain["items"]["$ref"]
    assert ref == "#/definitions/EscalationLevel"
    level_schema = fields["definitions"]["EscalationLevel"]
    assert level_schema["type"] == "object"
    assert {"name", "responders", "acknowledge_within"} <= set(level_schema["properties"])
    # responders may be left out when the level names an on-call calendar
    assert set(level_schema["required"]) == {"acknowledge_within"}
    assert level_schema["properties"]["responders"]["type"] == "array"
    assert level_schema["properties"]["responders"]["items"] == {"type": "string"}
    assert level_schema["properties"]["acknowledge_within"]["format"] == "duration"


def test_the_ui_form_renders_deadlines_as_durations_and_the_rest_as_text() -> None:
    properties = block_schema_fields()["properties"]

    assert properties["resolve_within"]["type"] == "string"
    assert properties["resolve_within"]["format"] == "duration"
    assert properties["severity_overrides"]["type"] == "object"
    assert {"type": "string"} in properties["notification_block"]["anyOf"]
    assert properties["notification_block"]["default"] is None
    assert properties["owning_team"]["type"] == "string"


def test_the_ui_form_checks_the_site_slug_with_the_same_pattern_as_python() -> None:
    pattern = block_schema_fields()["properties"]["site"]["pattern"]

    assert re.fullmatch(pattern, "berlin-plant")
    assert not re.fullmatch(pattern, "Berlin Plant")
    assert not re.fullmatch(pattern, "a/b")


def test_every_field_in_the_ui_form_has_a_description() -> None:
    fields = block_schema_fields()
    described = {
        "OwnershipPolicy": fields["properties"],
        "EscalationLevel": fields["definitions"]["EscalationLevel"]["properties"],
        "DeadlineOverride": fields["definitions"]["DeadlineOverride"]["properties"],
    }

    for model, properties in described.items():
        for name, prop in properties.items():
            assert prop.get("description", "").endswith("."), f"{model}.{name} lacks one"


def test_the_ui_form_offers_only_the_known_severities_as_override_keys() -> None:
    fields = block_schema_fields()

    assert fields["properties"]["severity_overrides"]["propertyNames"] == {"enum": list(SEVERITIES)}


def test_the_json_schema_is_the_block_schema() -> None:
    assert OwnershipPolicy.model_json_schema() == block_schema_fields()


def test_a_level_may_ask_to_be_reminded_and_reminds_never_by_default() -> None:
    chain = [{**level(), "remind_every": "30m"}, level()]
    policy = OwnershipPolicy(**policy_data(escalation_chain=chain))

    assert policy.escalation_chain[0].remind_every == timedelta(minutes=30)
    assert policy.escalation_chain[1].remind_every is None


@pytest.mark.parametrize("interval", ["0s", "PT0S", 0, -60], ids=["0s", "PT0S", "0", "-60"])
def test_a_reminder_interval_of_zero_or_less_is_refused_at_its_level(interval: Any) -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(escalation_chain=[level(), {**level(),
                                                                  "remind_every": interval}]))

    error = only_error(exc_info)
    assert error["loc"] == ("escalation_chain", 1, "remind_every")
    assert "remind_every must be longer than zero" in error["msg"]


def test_an_unreadable_reminder_interval_is_refused_at_its_field() -> None:
    with pytest.raises(ValidationError) as exc_info:
        OwnershipPolicy(**policy_data(escalation_chain=[{**level(), "remind_every": "often"}]))

    assert only_error(exc_info)["loc"] == ("escalation_chain", 0, "remind_every")
