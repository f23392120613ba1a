"""The workflow package keeps its layers: pure decisions import no I/O, and every phase of
the run has exactly one thing to do."""

from __future__ import annotations

import ast
from pathlib import Path

from axtrace.workflow import Phase, run, transitions

IO_MODULES = ("prefect", "sqlmodel", "sqlalchemy", "httpx", "axtrace.ledger.session",
              "axtrace.ledger.repo", "axtrace.ledger.db", "axtrace.events", "axtrace.outbound",
              "axtrace.settings", "axtrace.oncall")


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_transitions_import_no_session_prefect_or_network_module() -> None:
    modules = imported(Path(transitions.__file__))
    assert not {m for m in modules if m.startswith(IO_MODULES)}, modules
    assert "axtrace.ledger.models.Alert" in modules, "the check reads the real imports"


def test_every_phase_runs_a_task_or_waits_for_an_answer_or_ends_the_run() -> None:
    steps = set(run.tasks().by_phase)
    waits = {Phase.ACKNOWLEDGE, Phase.RESOLVE, Phase.SUPPRESSED}
    assert steps == {Phase.ASSIGN, Phase.SOURCE_RESOLVE, Phase.NOTIFY, Phase.CLOSE}
    assert steps | waits | {Phase.DONE} == set(Phase)
    assert not steps & waits


def test_the_task_table_names_each_task_as_the_run_shows_it() -> None:
    table = run.tasks()
    names = {phase: task.name for phase, task in table.by_phase.items()}
    assert names == {Phase.ASSIGN: "assign", Phase.SOURCE_RESOLVE: "resolve-at-source",
                     Phase.NOTIFY: "notify", Phase.CLOSE: "close"}
    assert (table.record.name, table.answer.name) == ("record", "take-answer")
