"""Specification of the sites-file check: every problem at once, each naming the site, the
path inside its entry, the closest known field and its line. Pure: no server, no database."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from axtrace.errors import InvalidInput
from axtrace.sitefile import SitesFile, check, fields_at, read
from axtrace.sites import load_sites

ROOT = Path(__file__).parents[2]

VALID = """\
sites:
  berlin-plant:
    description: Presses.
    policy:
      owning_team: Berlin line quality
      escalation_chain:
        - name: Line lead
          responders: [anna, ben]
          acknowledge_within: 15m
        - name: Shift manager
          responders: [clara]
          acknowledge_within: 30m
      resolve_within: 4h
      severity_overrides:
        critical:
          acknowledge_within: 5m
      notification_block: slack-webhook/berlin-ops
"""


def edited(old: str, new: str) -> str:
    """The valid file with one line changed (the line keeps its number)."""
    assert old in VALID
    return VALID.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_the_valid_file_and_the_shipped_sites_files_have_no_problem() -> None:
    assert check(VALID, "sites.yaml") == []
    for shipped in (ROOT / "deployments" / "sites.yaml", ROOT / "tests" / "data" / "sites.yaml"):
        assert check(shipped.read_text(), str(shipped)) == []


@pytest.mark.parametrize(("old", "typo", "where", "suggestion"), [
    ("description: Presses.", "descripton: Presses.", "descripton", "description"),
    ("notification_block:", "notification_blok:", "policy.notification_blok",
     "notification_block"),
    ("      severity_overrides:", "      severity_overides:", "policy.severity_overides",
     "severity_overrides"),
    ("          acknowledge_within: 30m", "          acknowlege_within: 30m",
     "policy.escalation_chain.1.acknowlege_within", "acknowledge_within"),
    ("          acknowledge_within: 5m", "          acknowledge_whithin: 5m",
     "policy.severity_overrides.critical.acknowledge_whithin", "acknowledge_within"),
], ids=["site-entry", "policy", "policy-overrides", "level", "override"])
def test_a_typo_at_each_level_names_site_path_closest_field_and_line(
    old: str, typo: str, where: str, suggestion: str,
) -> None:
    text = edited(old, typo)

    problems = [p for p in check(text, "sites.yaml") if "unknown field" in p.message]

    assert [p.field for p in problems] == [where]
    assert problems[0].message == (
        f"site 'berlin-plant': {where}: unknown field; did you mean '{suggestion}'?")
    assert problems[0].line == line_of(text, typo.strip())
    assert str(problems[0]) == f"sites.yaml:{problems[0].line}: {problems[0].message}"


def test_a_misspelled_required_field_is_also_reported_missing() -> None:
    text = edited("          acknowledge_within: 30m", "          acknowlege_within: 30m")

    problems = check(text, "sites.yaml")

    assert [(p.field, p.message.rsplit(": ", 1)[-1]) for p in problems] == [
        ("policy.escalation_chain.1.acknowledge_within", "required field missing"),
        ("policy.escalation_chain.1.acknowlege_within",
         "unknown field; did you mean 'acknowledge_within'?"),
    ]
    assert problems[0].line == line_of(text, "name: Shift manager")  # where the level starts


def test_the_issues_example_reads_as_promised() -> None:
    text = edited("notification_block:", "notification_blok:")

    assert str(check(text, "sites.yaml")[0]) == (
        f"sites.yaml:{line_of(text, 'notification_blok')}: site 'berlin-plant': "
        "policy.notification_blok: unknown field; did you mean 'notification_block'?")


def test_a_misspelled_severity_is_named_with_the_closest_one_on_its_line() -> None:
    text = edited("        critical:", "        critcal:")

    [problem] = check(text, "sites.yaml")

    assert problem.field == "policy.severity_overrides.critcal"
    assert "did you mean 'critical'?" in problem.message
    assert problem.line == line_of(text, "critcal")


def test_an_unknown_top_level_key_is_named_with_the_closest_one() -> None:
    text = "site:\n  x: {}\n" + VALID

    messages = [p.message for p in check(text, "sites.yaml")]

    assert "site: unknown field; did you mean 'sites'?" in messages


def test_a_field_without_a_close_match_lists_the_known_ones() -> None:
    text = edited("description: Presses.", "owner: someone")

    [problem] = check(text, "sites.yaml")

    assert problem.message == "site 'berlin-plant': owner: unknown field; expected one of " \
        "description, policy"


def test_every_error_of_the_file_is_reported_at_once_in_line_order() -> None:
    text = edited("notification_block:", "notification_blok:")
    text = text.replace("acknowledge_within: 30m", "acknowlege_within: 30m")
    text = text.replace("resolve_within: 4h", "resolve_within: soon")

    problems = check(text, "sites.yaml")

    assert [p.field for p in problems] == [
        "policy.escalation_chain.1.acknowledge_within",  # now missing
        "policy.escalation_chain.1.acknowlege_within",
        "policy.resolve_within",
        "policy.notification_blok",
    ]
    assert [p.line for p in problems] == sorted(p.line for p in problems)
    assert "required field missing" in problems[0].message
    assert "got 'soon'" in problems[2].message


def test_a_site_in_the_policy_is_refused_because_the_key_names_the_site() -> None:
    text = edited("      owning_team:", "      site: elsewhere\n      owning_team:")

    [problem] = check(text, "sites.yaml")

    assert problem.field == "policy.site"
    assert problem.line == line_of(text, "site: elsewhere")


def test_a_duplicate_key_in_a_policy_is_refused_naming_both_lines() -> None:
    text = edited("      resolve_within: 4h", "      resolve_within: 4h\n      resolve_within: 1h")

    [problem] = check(text, "sites.yaml")

    first = line_of(text, "resolve_within: 4h")
    assert problem.line == first + 1
    assert problem.message == (f"site 'berlin-plant': policy.resolve_within: duplicate key; "
                               f"first at line {first} (YAML would keep only the last silently)")


def test_a_duplicate_site_is_refused() -> None:
    text = VALID + VALID.removeprefix("sites:\n")

    problems = check(text, "sites.yaml")

    assert [(p.line, p.message) for p in problems] == [
        (line_of(VALID, "berlin-plant") + len(VALID.splitlines()) - 1,
         "site 'berlin-plant': duplicate site; first at line 2 "
         "(YAML would keep only the last silently)")]


def test_a_duplicate_key_in_a_level_or_at_the_top_is_refused() -> None:
    in_level = edited("          responders: [clara]",
                      "          responders: [clara]\n          responders: [dora]")
    at_top = VALID + "sites: {}\n"

    assert [p.field for p in check(in_level, "s")] == ["policy.escalation_chain.1.responders"]
    assert any(p.message.startswith("sites: duplicate key") for p in check(at_top, "s"))


def test_a_key_overriding_a_yaml_merge_is_not_a_duplicate() -> None:
    text = VALID.replace("        - name: Line lead\n",
                         "        - &lead\n          name: Line lead\n")
    text = text.replace("        - name: Shift manager\n",
                        "        - <<: *lead\n          name: Shift manager\n")

    assert check(text, "s") == []


def test_invalid_yaml_is_one_error_on_its_line() -> None:
    [problem] = check("sites:\n  x: [unclosed\n", "sites.yaml")

    assert problem.message.startswith("not valid YAML: ")
    assert problem.line == 3


@pytest.mark.parametrize(("text", "message"), [
    ("", "needs a 'sites:' mapping of site slug to policy"),
    ("sites:\n  x: just text\n", "site 'x': needs a 'policy:' mapping"),
    ("sites:\n  x:\n    policy: text\n", "site 'x': needs a 'policy:' mapping"),
])
def test_a_file_without_the_expected_shape_says_what_it_needs(text: str, message: str) -> None:
    assert [p.message for p in check(text, "s")] == [message]


def test_a_level_slower_than_the_resolve_deadline_is_a_warning_not_an_error() -> None:
    text = edited("acknowledge_within: 30m", "acknowledge_within: 5h")

    checked = read(text, "sites.yaml")

    assert checked.errors == []
    [warning] = checked.problems
    assert warning.severity == "warning"
    assert warning.field == "policy.escalation_chain.1.acknowledge_within"
    assert warning.line == line_of(text, "5h")
    assert "5h is longer than the resolve deadline 4h" in warning.message
    assert [s.site for s in checked.specs] == ["berlin-plant"]


def test_an_override_whose_deadlines_cannot_both_hold_is_a_warning() -> None:
    text = edited("          acknowledge_within: 5m", "          resolve_within: 10m")

    [warning] = check(text, "sites.yaml")

    assert warning.field == "policy.severity_overrides.critical"
    assert "for critical alerts an acknowledge deadline (30m)" in warning.message


def test_a_responder_in_two_levels_of_one_chain_is_a_warning_on_the_second() -> None:
    text = edited("responders: [clara]", "responders: [clara, anna]")

    [warning] = check(text, "sites.yaml")

    assert warning.severity == "warning"
    assert warning.field == "policy.escalation_chain.1.responders.1"
    assert "responder 'anna' is also in level 1 (Line lead)" in warning.message


def test_a_notification_block_not_written_as_type_slash_name_is_a_warning() -> None:
    text = edited("notification_block: slack-webhook/berlin-ops", "notification_block: berlin")

    [warning] = check(text, "sites.yaml")

    assert warning.severity == "warning"
    assert "'<block-type-slug>/<name>'" in warning.message


def test_load_sites_refuses_what_check_refuses_with_the_same_messages(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(edited("notification_block:", "notification_blok:")
                    .replace("resolve_within: 4h", "resolve_within: 4h\n      resolve_within: 1h"))
    expected = [str(p) for p in check(path.read_text(), str(path))]
    assert len(expected) == 2

    with pytest.raises(InvalidInput) as refused:
        load_sites(path)

    assert refused.value.message.splitlines() == expected
    assert refused.value.field == "sites.berlin-plant.policy.resolve_within"


def test_load_sites_accepts_a_file_with_warnings_only(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(edited("responders: [clara]", "responders: [clara, anna]"))

    assert [s.site for s in load_sites(path)] == ["berlin-plant"]


def test_every_model_of_a_site_entry_forbids_unknown_fields() -> None:
    """A model added to the policy later (windows, detectors, calendars) is strict too."""
    def models(model: type[BaseModel]) -> set[type[BaseModel]]:
        found = {model}
        for info in model.model_fields.values():
            for arg in _types_in(info.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in found:
                    found |= models(arg)
        return found

    for model in models(SitesFile):
        assert model.model_config.get("extra") == "forbid", model.__name__


def _types_in(annotation: object) -> list[object]:
    from typing import get_args

    args = list(get_args(annotation))
    return [annotation, *[t for a in args for t in _types_in(a)]]


def test_the_known_fields_at_a_path_come_from_the_models() -> None:
    assert fields_at(["sites", "x", "policy", "escalation_chain", "0"]) == [
        "name", "responders", "oncall_calendar", "oncall_name_pattern", "acknowledge_within",
        "remind_every"]
    assert fields_at(["sites", "x", "policy", "severity_overrides", "low"]) == [
        "acknowledge_within", "resolve_within"]
    assert fields_at(["sites", "x", "policy", "owning_team"]) == []


@pytest.mark.parametrize(("interval", "says"), [
    ("0s", "remind_every must be longer than zero"), ("often", "remind_every"),
])
def test_a_bad_reminder_interval_names_the_site_and_the_levels_field(
    interval: str, says: str,
) -> None:
    text = edited("          acknowledge_within: 30m",
                  f"          acknowledge_within: 30m\n          remind_every: {interval}")

    [problem] = check(text, "sites.yaml")

    assert problem.field == "policy.escalation_chain.1.remind_every"
    assert problem.message.startswith(
        "site 'berlin-plant': policy.escalation_chain.1.remind_every: ")
    assert says in problem.message
    assert problem.line == line_of(text, "remind_every")


# --------------------------------------------------------------------------- on-call calendars

ON_CALL = "          responders: [anna, ben]\n          oncall_calendar: /nonexistent/berlin.ics"


@pytest.mark.parametrize(("level", "field", "message"), [
    ("          responders: [anna, ben]\n          oncall_calendar: http://cal.example/a.ics",
     "policy.escalation_chain.0.oncall_calendar",
     "must be an https:// URL with a host or a file path, not a http:// URL"),
    ("          responders: [anna, ben]\n          oncall_calendar: webcal://cal.example/a",
     "policy.escalation_chain.0.oncall_calendar", "not a webcal:// URL"),
    (ON_CALL + "\n          oncall_name_pattern: 'On call: .+'",
     "policy.escalation_chain.0.oncall_name_pattern",
     "needs exactly one group (the name), it has 0"),
    (ON_CALL + "\n          oncall_name_pattern: '(On) call: (.+)'",
     "policy.escalation_chain.0.oncall_name_pattern", "it has 2"),
    (ON_CALL + "\n          oncall_name_pattern: 'On call: (.+'",
     "policy.escalation_chain.0.oncall_name_pattern", "not a valid regular expression"),
    ("          responders: []", "policy.escalation_chain.0",
     "a level needs responders, an oncall_calendar, or both"),
    ("          responders: [anna]\n          oncall_name_pattern: '(.+)'",
     "policy.escalation_chain.0", "oncall_name_pattern needs an oncall_calendar"),
    (ON_CALL.replace("oncall_calendar", "oncall_calender"),
     "policy.escalation_chain.0.oncall_calender", "did you mean 'oncall_calendar'?"),
])
def test_a_bad_on_call_calendar_names_the_site_and_the_field(
        level: str, field: str, message: str) -> None:
    problems = [p for p in check(edited("          responders: [anna, ben]", level), "s.yaml")
                if p.severity == "error"]
    assert [(p.site, p.field) for p in problems] == [("berlin-plant", field)]
    assert message in problems[0].message
    assert problems[0].message.startswith(f"site 'berlin-plant': {field}: ")


def test_an_unreadable_calendar_file_is_a_warning_saying_what_the_fallback_is() -> None:
    problems = check(edited("          responders: [anna, ben]", ON_CALL), "s.yaml")
    assert [(p.severity, p.field) for p in problems] == [
        ("warning", "policy.escalation_chain.0.oncall_calendar")]
    assert "cannot read calendar file '/nonexistent/berlin.ics' (FileNotFoundError" \
        in problems[0].message
    assert problems[0].message.endswith(
        "until it can be read, level 1 falls back to its responders (anna, ben)")
    alone = check(edited("          responders: [anna, ben]",
                         "          oncall_calendar: /nonexistent/berlin.ics"), "s.yaml")
    assert [p.severity for p in alone] == ["warning"]
    assert alone[0].message.endswith("level 1 is skipped (it has no responders)")


def test_a_readable_calendar_or_an_https_feed_is_no_problem(tmp_path: Path) -> None:
    calendar = tmp_path / "oncall.ics"
    calendar.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\nEND:VCALENDAR\n")
    for source in (str(calendar), "https://oncall.example/private/t0k3n/feed.ics"):
        level = f"          oncall_calendar: {source}\n          oncall_name_pattern: 'On: (.+)'"
        assert check(edited("          responders: [anna, ben]", level), "s.yaml") == []
