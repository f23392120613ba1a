"""``axtrace sites diff`` and ``check`` against the session's real Prefect server, where
``tests/data/sites.yaml`` was applied with ``axtrace sites apply`` when the stack started."""

from __future__ import annotations

from pathlib import Path

import pytest

from axtrace.sitediff import Change, sites_diff
from axtrace.testing import Stack
from tests.conftest import TEST_SITES

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).parents[2]
SHOWN = {"alpha", "beta", "gamma"}  # sites no other test edits on the server


@pytest.fixture
def edited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The applied sites file with beta's first deadline changed and gamma removed."""
    monkeypatch.chdir(ROOT)  # a sites file outside the project is diffed from the project
    text = TEST_SITES.read_text()
    gamma = text.index("  gamma:")
    text = text[:gamma] + text[text.index("  delta:"):]
    assert "acknowledge_within: 5s" in text
    path = tmp_path / "sites.yaml"
    path.write_text(text.replace("acknowledge_within: 5s", "acknowledge_within: 7s"))
    return path


def test_the_applied_file_shows_no_change_for_its_sites(stack: Stack) -> None:
    assert [c for c in sites_diff(TEST_SITES) if c.site in SHOWN] == []


def test_diff_shows_a_changed_deadline_and_a_removed_site(stack: Stack, edited: Path) -> None:
    changes = [c for c in sites_diff(edited) if c.site in SHOWN]

    assert changes == [
        Change("beta", "changed", "policy.escalation_chain.0.acknowledge_within", "5s", "7s"),
        Change("gamma", "removed"),
    ]


def test_the_cli_prints_the_changes_and_exits_1(stack: Stack, edited: Path) -> None:
    result = stack.axtrace("sites", "diff", str(edited), check=False)

    assert result.returncode == 1, result.stderr
    assert ("~ site 'beta': policy.escalation_chain.0.acknowledge_within: 5s -> 7s"
            in result.stdout.splitlines())
    assert any(line.startswith("- site 'gamma': removed") for line in result.stdout.splitlines())


def test_check_warns_about_a_notification_block_the_server_does_not_have(
    stack: Stack, tmp_path: Path,
) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(TEST_SITES.read_text().replace(
        "      resolve_within: 1h\n",
        "      resolve_within: 1h\n      notification_block: slack-webhook/no-such-block\n", 1))

    result = stack.axtrace("sites", "check", str(path), check=False)

    assert result.returncode == 0, result.stderr
    assert ("site 'alpha': policy.notification_block: block 'slack-webhook/no-such-block' "
            "does not exist on the Prefect server") in result.stderr
