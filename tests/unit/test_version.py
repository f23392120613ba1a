"""The workflow version covers every file that decides what a run does, and nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from axtrace import __version__
from axtrace.cli import app
from axtrace.version import behaviour_files, workflow_version

ROOT = Path(__file__).parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A second copy of the project's code, in another folder (another machine's checkout)."""
    for folder in ("axtrace", "axtrace_blocks", "flows", "tests"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


def test_the_same_code_in_another_folder_has_the_same_version(checkout: Path) -> None:
    assert workflow_version(checkout) == workflow_version(ROOT)


@pytest.mark.parametrize("behaviour", [
    "axtrace/ownership.py", "axtrace/ledger/repo.py", "axtrace/outbound.py",
    "axtrace_blocks/policy.py", "flows/respond.py", "axtrace/workflow/transitions.py",
    "axtrace/workflow/steps.py",
])
def test_an_edit_to_a_behaviour_file_changes_the_version(checkout: Path, behaviour: str) -> None:
    before = workflow_version(checkout)
    edit(checkout / behaviour)
    assert workflow_version(checkout) != before


@pytest.mark.parametrize("other", ["README.md", "tests/unit/test_version.py",
                                   "axtrace/testing.py"])
def test_an_edit_to_docs_tests_or_the_test_harness_keeps_the_version(
    checkout: Path, other: str,
) -> None:
    before = workflow_version(checkout)
    edit(checkout / other)
    assert workflow_version(checkout) == before


def test_line_endings_do_not_change_the_version(checkout: Path) -> None:
    before = workflow_version(checkout)
    path = checkout / "axtrace" / "ownership.py"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert workflow_version(checkout) == before


def test_the_covered_files_are_the_product_modules() -> None:
    names = behaviour_files(ROOT)
    assert {"axtrace/ownership.py", "axtrace/ledger/repo.py", "axtrace/ledger/models.py",
            "axtrace_blocks/policy.py", "flows/respond.py"} <= set(names)
    assert not [n for n in names if "migrations/" in n or n == "axtrace/testing.py"]
    assert list(names) == sorted(names)


def test_axtrace_version_prints_the_package_and_workflow_versions() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0, result.output
    assert __version__ in result.output
    assert workflow_version() in result.output
    assert f"{len(behaviour_files())} files" in result.output


def test_manifest_changes_name_each_file_changed_added_or_removed_in_file_order() -> None:
    from axtrace.version import manifest_changes

    recorded = {"a.py": "1", "b.py": "2", "c.py": "3"}
    assert manifest_changes(recorded, {"a.py": "1", "b.py": "x", "d.py": "4"}) == [
        "changed: b.py", "removed: c.py", "added: d.py"]
    assert manifest_changes(recorded, dict(recorded)) == []


def test_a_manifest_key_is_a_valid_prefect_artifact_key_per_version() -> None:
    from axtrace.version import manifest_key

    assert manifest_key("0.1.0+ab12cd34ef") == "workflow-manifest-0-1-0-ab12cd34ef"
    assert manifest_key("0.1.0+ab12cd34ef") != manifest_key("0.1.0+ab12cd34e0")
