"""One duration syntax, one slug and one severity list for the policy, the reports and the CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from axtrace.vocabulary import SEVERITIES, SITE_SLUG_RE, shorthand_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("1.5h", 5400), (" 7d ", 604800), ("2w", 1209600)])
def test_every_shorthand_unit_means_the_same_everywhere(text: str, seconds: float) -> None:
    assert shorthand_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "7", "d7", "7y", "-1d", "PT5M", "7 days"])
def test_anything_else_is_not_a_shorthand(text: str) -> None:
    assert shorthand_duration(text) is None


def test_the_policy_the_report_and_the_export_read_durations_alike() -> None:
    from datetime import UTC, datetime

    from axtrace.reports.period import parse_instant
    from axtrace_blocks import EscalationLevel

    now = datetime(2026, 12, 1, tzinfo=UTC)
    level = EscalationLevel(responders=["ann"], acknowledge_within="2w")
    assert level.acknowledge_within == timedelta(weeks=2)
    assert parse_instant("2w", anchor=now, field="since") == now - timedelta(weeks=2)


def test_a_bad_export_since_is_refused_naming_the_option_and_the_forms() -> None:
    from axtrace.cli import app

    result = CliRunner().invoke(app, ["export", "--since", "yesterday"])
    assert result.exit_code == 1
    assert "--since: expected 30s, 15m, 12h, 7d or 2w" in result.output


def test_severities_and_the_slug_are_the_policy_blocks_own() -> None:
    from axtrace_blocks import Severity

    assert tuple(Severity) == SEVERITIES == ("critical", "high", "medium", "low")
    assert SITE_SLUG_RE.match("berlin-plant")
    assert not SITE_SLUG_RE.match("Berlin")
