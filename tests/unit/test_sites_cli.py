"""``axtrace sites check`` and ``sites schema`` as CI runs them: no Prefect server reachable, no
database; and ``sites apply`` / ``axtrace up`` refusing the same files with the same messages.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from axtrace.sitefile import schema
from axtrace.testing import free_port

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "deployments" / "sites.yaml"
SCHEMA_FILE = ROOT / "deployments" / "sites.schema.json"


def axtrace(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The CLI with Prefect pointed at a closed port and the ledger in a folder never made."""
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
           "AXTRACE_DATABASE_URL": f"sqlite:///{cwd}/no-such-folder/ledger.db",
           "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "axtrace", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """The shipped sites with two typos (in a policy, in an override) and a duplicate key."""
    text = SHIPPED.read_text()
    text = text.replace("      resolve_within: 1h\n",
                        "      resolve_within: 1h\n      notification_blok: slack-webhook/x\n", 1)
    text = text.replace("          acknowledge_within: 15s\n",
                        "          acknowlege_within: 15s\n", 1)
    text = text.replace("      resolve_within: 2h\n",
                        "      resolve_within: 2h\n      resolve_within: 3h\n", 1)
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    return path


def error_lines(stderr: str) -> list[str]:
    """The problems printed, one a line (``error: FILE:LINE: ...``)."""
    return [line for line in stderr.splitlines() if re.match(r"error: .+\.yaml:\d+: ", line)]


def test_check_passes_the_shipped_sites_without_a_server_or_a_database() -> None:
    result = axtrace("sites", "check", "deployments/sites.yaml")

    assert result.returncode == 0, result.stderr
    assert "3 sites, 0 error(s), 0 warning(s)" in result.stdout
    assert not (ROOT / "no-such-folder").exists()


def test_check_prints_every_error_with_its_line_and_exits_1(broken: Path) -> None:
    result = axtrace("sites", "check", str(broken))

    assert result.returncode == 1
    lines = error_lines(result.stderr)
    assert len(lines) == 3, result.stderr
    assert any(f"{broken}:" in line and "site 'berlin-plant': policy.notification_blok: "
               "unknown field; did you mean 'notification_block'?" in line for line in lines)
    assert any("policy.severity_overrides.critical.acknowlege_within: unknown field; "
               "did you mean 'acknowledge_within'?" in line for line in lines)
    assert any("site 'lyon-store': policy.resolve_within: duplicate key" in line
               for line in lines)


def test_check_in_json_gives_ci_one_annotation_per_problem(broken: Path) -> None:
    result = axtrace("sites", "check", str(broken), "--format", "json")

    assert result.returncode == 1
    problems: list[dict[str, Any]] = json.loads(result.stdout)
    assert {p["severity"] for p in problems} == {"error"}
    typo = next(p for p in problems if p["field"] == "policy.notification_blok")
    assert typo["file"] == str(broken)
    assert typo["site"] == "berlin-plant"
    assert broken.read_text().splitlines()[typo["line"] - 1].strip().startswith(
        "notification_blok:")


def test_check_reports_warnings_but_passes(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(SHIPPED.read_text().replace("responders: [clara.vogel]",
                                                "responders: [clara.vogel, anna.keller]"))

    result = axtrace("sites", "check", str(path))

    assert result.returncode == 0
    assert "warning: " in result.stderr
    assert "responder 'anna.keller' is also in level 1 (Line lead)" in result.stderr


def test_check_says_when_the_notification_blocks_could_not_be_looked_up(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(SHIPPED.read_text().replace(
        "      resolve_within: 1h\n", "      resolve_within: 1h\n"
        "      notification_block: slack-webhook/berlin-ops\n", 1))

    result = axtrace("sites", "check", str(path))

    assert result.returncode == 0
    assert "no Prefect server configured or reachable" in result.stderr


def test_sites_apply_and_up_refuse_the_file_check_refuses_with_the_same_messages(
    broken: Path,
) -> None:
    checked = error_lines(axtrace("sites", "check", str(broken)).stderr)

    applied = axtrace("sites", "apply", str(broken))
    started = axtrace("up", "--sites", str(broken))

    assert applied.returncode == started.returncode == 1
    assert error_lines(applied.stderr) == checked
    assert error_lines(started.stderr) == checked
    assert "nothing applied" in applied.stderr


def test_check_names_a_missing_file() -> None:
    result = axtrace("sites", "check", "nope.yaml")

    assert result.returncode == 1
    assert "sites file not found: nope.yaml" in result.stderr


# --------------------------------------------------------------------------- the schema


def test_the_shipped_schema_is_the_generated_one() -> None:
    """Regenerate with `axtrace sites schema > deployments/sites.schema.json`."""
    assert json.loads(SCHEMA_FILE.read_text()) == schema()


def test_sites_schema_prints_the_generated_schema() -> None:
    result = axtrace("sites", "schema")

    assert result.returncode == 0
    assert json.loads(result.stdout) == schema()


def test_the_shipped_sites_file_points_editors_at_the_schema() -> None:
    first = SHIPPED.read_text().splitlines()[0]

    assert first == "# yaml-language-server: $schema=./sites.schema.json"


@pytest.mark.parametrize("sites_file", [SHIPPED, ROOT / "tests" / "data" / "sites.yaml"])
def test_the_schema_accepts_the_shipped_sites_files(sites_file: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema())

    assert list(validator.iter_errors(yaml.safe_load(sites_file.read_text()))) == []


@pytest.mark.parametrize(("path", "key"), [
    ((), "site"),
    (("sites", "berlin-plant"), "descripton"),
    (("sites", "berlin-plant", "policy"), "notification_blok"),
    (("sites", "berlin-plant", "policy", "escalation_chain", 0), "acknowlege_within"),
    (("sites", "berlin-plant", "policy", "severity_overrides", "critical"), "resolve_whithin"),
    (("sites", "berlin-plant", "policy", "severity_overrides"), "critcal"),
    (("sites", "berlin-plant", "policy"), "site"),
], ids=["top", "site-entry", "policy", "level", "override", "severity", "site-in-policy"])
def test_the_schema_rejects_a_typo_at_each_level(path: tuple[Any, ...], key: str) -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    target = data
    for part in path:
        target = target[part]
    target[key] = {} if key == "critcal" else "15m"

    errors = list(jsonschema.Draft202012Validator(schema()).iter_errors(data))

    assert len(errors) == 1
    assert tuple(errors[0].absolute_path) == path
    assert key in errors[0].message


@pytest.mark.parametrize("duration", ["30s", "15m", "2h", "1d", "PT15M", "P1DT2H", 90])
def test_the_schema_accepts_every_duration_the_file_may_use(duration: object) -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    data["sites"]["lyon-store"]["policy"]["resolve_within"] = duration

    assert jsonschema.Draft202012Validator(schema()).is_valid(data)


def test_the_schema_rejects_a_duration_the_file_may_not_use() -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    data["sites"]["lyon-store"]["policy"]["resolve_within"] = "two hours"

    assert not jsonschema.Draft202012Validator(schema()).is_valid(data)
