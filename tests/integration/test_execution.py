"""Warm executions, with real processes: a run's ``python -m prefect.engine`` runs in a child
forked from a template (a forkserver that preloaded Prefect) and behaves as a spawned one.

Tests 1, 2, 4, 5 serve a probe flow (``execution/project/probe_flow.py``, copied to a temporary
project folder) from their own Runner process (``execution/serve.py``, the order of
``axtrace serve``) on the session's Prefect server; the SIGKILL test uses the session stack.
Processes are found through /proc: the template is the serving process's child running
``multiprocessing.forkserver``, and each warm execution is a child of the template.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from axtrace.testing import Stack, wait_until
from tests.integration.test_respond import waiting

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).parents[2]
PROBE_PROJECT = Path(__file__).parent / "execution" / "project"
PROBE_VAR = "AXTRACE_TEST_PROBE_VAR"
PER_RUN = {"PREFECT__FLOW_RUN_ID", "PREFECT__CONTROL_PORT", "PREFECT__CONTROL_TOKEN",
           "PREFECT__DEPLOYMENT_NAME", "PREFECT__STORAGE_BASE_PATH", "AXTRACE_EXECUTION",
           "PYTEST_CURRENT_TEST"}
"""Environment variables that differ between two runs or two runners (each has its own
deployment, storage folder and start time, and AXTRACE_EXECUTION by design)."""


# -- processes, through /proc -------------------------------------------------------------

def stat_of(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def children_of(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = stat_of(int(entry.name))
            if stat is not None and stat[1] == parent and stat[0] != "Z":
                found.add(int(entry.name))
    return found


def cmdline_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def template_of(serving_pid: int, *, timeout: float = 90) -> int:
    """The pid of the forkserver (the template) that a serving process started."""
    def probe() -> int | None:
        return next((pid for pid in children_of(serving_pid)
                     if "multiprocessing.forkserver" in cmdline_of(pid)), None)

    pid: int = wait_until(probe, timeout=timeout, what=f"the template of process {serving_pid}")
    return pid


def is_gone(pid: int) -> bool:
    stat = stat_of(pid)
    return stat is None or stat[0] == "Z"


# -- Prefect --------------------------------------------------------------------------------

def prefect() -> Any:
    from prefect import get_client

    return get_client(sync_client=True)


def state_of(run_id: Any) -> str | None:
    with prefect() as client:
        state = client.read_flow_run(run_id).state
    return state.type.value if state else None


def states_of(run_ids: list[Any]) -> Counter[str]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with prefect() as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)),
            limit=len(run_ids))
    return Counter(run.state.type.value if run.state else "NONE" for run in runs)


# -- a Runner of our own serving the probe ---------------------------------------------------

@dataclass
class Served:
    """A Runner process serving deployment ``axtrace-probe/<name>`` of a project folder."""

    proc: subprocess.Popen[bytes]
    root: Path
    name: str
    log: Path

    def run(self, **parameters: Any) -> Any:
        with prefect() as client:
            return client.create_flow_run_from_deployment(
                self.deployment_id(), parameters=parameters).id

    def deployment_id(self) -> Any:
        with prefect() as client:
            return client.read_deployment_by_name(f"axtrace-probe/{self.name}").id

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def finished(self, run_id: Any, *, timeout: float = 120) -> str:
        """Wait until the run reaches a final state; its state type."""
        final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

        def probe() -> str | None:
            assert self.proc.poll() is None, f"the runner exited:\n{self.tail()}"
            state = state_of(run_id)
            return state if state in final else None

        result: str = wait_until(probe, timeout=timeout, interval=0.5,
                                 what=f"run {run_id} to finish")
        return result

    def report(self, out: Path, **parameters: Any) -> dict[str, Any]:
        """Run the probe once to completion; what it reported."""
        run_id = self.run(out=str(out), **parameters)
        state = self.finished(run_id)
        assert state == "COMPLETED", f"probe run {run_id} ended {state}:\n{self.tail()}"
        data: dict[str, Any] = json.loads(out.read_text())
        return data


def start_serving(root: Path, name: str, execution: str, logs: Path) -> Served:
    env = {**os.environ, "AXTRACE_EXECUTION": execution, PROBE_VAR: "set-for-the-deployment",
           "PYTHONUNBUFFERED": "1"}
    log = logs / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # From the repository's root, as `python -m axtrace serve` is started from wherever
        # the operator stands (not from the project folder).
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.execution.serve", str(root), name],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    served = Served(proc, root, name, log)

    def ready() -> bool:
        assert proc.poll() is None, f"the runner exited:\n{served.tail()}"
        return f"{execution} executions" in log.read_text(errors="replace")

    wait_until(ready, timeout=120, interval=0.5, what=f"runner {name} to start")
    served.deployment_id()
    return served


def stop_serving(served: Served) -> None:
    """SIGTERM the runner's session (runner, template, executions), SIGKILL after 20 s."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(served.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            served.proc.wait(timeout=grace)
            os.killpg(served.proc.pid, signal.SIGKILL)  # what is left of the session
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the probe's project folder."""
    root = tmp_path_factory.mktemp("probe") / "project"
    shutil.copytree(PROBE_PROJECT, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def warm(prefect_api_url: str, project: Path) -> Iterator[Served]:
    served = start_serving(project, f"warm-{uuid.uuid4().hex[:8]}", "warm",
                           project.parent / "logs")
    try:
        yield served
    finally:
        stop_serving(served)


# -- the tests ------------------------------------------------------------------------------

@pytest.mark.timeout(900)  # measured on 2 busy cores: 242 s at load 5-6, 435 s at load 8
def test_two_hundred_consecutive_warm_executions_all_complete_forked_from_the_template(
    warm: Served, tmp_path: Path,
) -> None:
    template = template_of(warm.proc.pid)
    started = time.monotonic()
    run_ids = [warm.run(out=str(tmp_path / f"{i}.json")) for i in range(200)]

    def all_final() -> Counter[str] | None:
        assert warm.proc.poll() is None, f"the runner exited:\n{warm.tail()}"
        counts = states_of(run_ids)
        final = sum(counts[s] for s in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"))
        return counts if final == len(run_ids) else None

    counts = wait_until(all_final, timeout=600, interval=2,
                        what=f"200 warm executions to finish ({warm.log})")
    elapsed = time.monotonic() - started
    assert counts == Counter({"COMPLETED": 200}), f"{counts}:\n{warm.tail()}"
    reports = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(200)]
    parents = Counter(report["ppid"] for report in reports)
    assert parents == Counter({template: 200}), (
        f"every execution must be a child of the template {template} "
        f"(runner {warm.proc.pid}): {parents}")
    assert len({report["pid"] for report in reports}) == 200, "one process per execution"
    cpu = sorted(report["cpu_seconds"] for report in reports)
    assert cpu[100] < 1.0, f"a warm child starts with Prefect imported: median {cpu[100]:.2f} CPU-s"
    assert template_of(warm.proc.pid) == template, "the template is never restarted"
    print(f"200 warm executions in {elapsed:.0f} s; median CPU at the flow's start "
          f"{cpu[100]:.2f} s")


def test_the_template_runs_a_single_thread(warm: Served, tmp_path: Path) -> None:
    warm.report(tmp_path / "one.json")  # it has forked at least once
    template = template_of(warm.proc.pid)
    threads = sorted(int(t.name) for t in Path(f"/proc/{template}/task").iterdir())
    assert threads == [template], (
        f"the template forks executions: it must have no thread but its main one; "
        f"tasks {threads}")


def test_cancelling_a_running_warm_execution_through_the_api_ends_it_and_its_process(
    warm: Served, tmp_path: Path,
) -> None:
    from prefect.states import Cancelling

    out = tmp_path / "sleeper.json"
    run_id = warm.run(out=str(out), sleep=300)
    wait_until(out.exists, timeout=120, what=f"the sleeping run to start ({warm.log})")
    child = json.loads(out.read_text())["pid"]
    assert state_of(run_id) == "RUNNING"
    assert child in children_of(template_of(warm.proc.pid)), "a warm execution"

    with prefect() as client:  # what the UI's Cancel button does
        client.set_flow_run_state(run_id, Cancelling())
    assert warm.finished(run_id, timeout=120) == "CANCELLED", warm.tail()
    wait_until(lambda: is_gone(child), timeout=60, what=f"process {child} to end")


def test_the_child_sees_the_environment_and_folders_a_spawned_one_would(
    warm: Served, project: Path, tmp_path: Path,
) -> None:
    spawn = start_serving(project, f"spawn-{uuid.uuid4().hex[:8]}", "spawn",
                          project.parent / "logs")
    try:
        spawned = spawn.report(tmp_path / "spawned.json")
    finally:
        stop_serving(spawn)
    forked = warm.report(tmp_path / "forked.json")

    assert forked["ppid"] == template_of(warm.proc.pid), "the warm side really forked"
    assert spawned["ppid"] == spawn.proc.pid, "the spawn side really spawned"
    assert forked["cwd"] == spawned["cwd"] == str(project)
    assert forked["env"][PROBE_VAR] == spawned["env"][PROBE_VAR] == "set-for-the-deployment"
    assert forked["api_url"] == spawned["api_url"] == os.environ["PREFECT_API_URL"]
    assert forked["env"]["PREFECT_API_URL"] == spawned["env"]["PREFECT_API_URL"]
    assert forked["argv"] == spawned["argv"]
    assert forked["executable"] == spawned["executable"]

    def same_for_every_run(env: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in env.items() if k not in PER_RUN}

    assert same_for_every_run(forked["env"]) == same_for_every_run(spawned["env"])
    # `python -m prefect.engine` puts its working directory (the project) first on sys.path;
    # Prefect's flow loader adds the project again (duplicates ignored here).
    assert list(dict.fromkeys(forked["sys_path"])) == list(dict.fromkeys(spawned["sys_path"])), (
        "BUG axtrace/execution.py execute(): a warm child keeps the sys.path of the serving "
        "process (copied into the forkserver when it started, with the directory `serve` was "
        "started from), not the one `python -m prefect.engine` computes from its cwd and "
        f"environment: only warm {sorted(set(forked['sys_path']) - set(spawned['sys_path']))}, "
        f"only spawned {sorted(set(spawned['sys_path']) - set(forked['sys_path']))}")
    # Unpickling the execution's target in the fork imports axtrace.execution (and its
    # package): nothing else of AxTrace may be there before the flow imports it.
    assert set(forked["axtrace_modules"]) - {"axtrace", "axtrace.execution"} <= set(
        spawned["axtrace_modules"]), "the template imported AxTrace's own code"


def test_an_edit_to_the_flows_project_on_disk_reaches_the_next_warm_execution(
    warm: Served, project: Path, tmp_path: Path,
) -> None:
    helper = project / "probe_helper.py"
    original = helper.read_text()
    try:
        before = warm.report(tmp_path / "before.json")
        assert before["helper"] == "as shipped"
        helper.write_text('"""Edited by the test."""\n\nVALUE = "edited while serving, v2"\n')
        after = warm.report(tmp_path / "after.json")
    finally:
        helper.write_text(original)
    assert after["ppid"] == before["ppid"] == template_of(warm.proc.pid), "the same template"
    assert after["helper"] == "edited while serving, v2", "stale code served"


def test_a_warm_execution_killed_with_sigkill_is_marked_crashed_and_the_auditor_repairs_it(
    stack: Stack,
) -> None:
    from prefect import get_client

    from axtrace.auditor import audit_once

    assert stack.serve_proc is not None
    template = template_of(stack.serve_proc.pid)
    before = children_of(template)
    alert_id = stack.raise_alert("alpha", "Execution killed mid-step")
    run_id = wait_until(lambda: stack.alert(alert_id)["flow_run_id"], timeout=90,
                        interval=0.05, what="the alert's run")

    def running_child() -> int | None:
        fresh = children_of(template) - before
        return next(iter(fresh)) if len(fresh) == 1 and state_of(run_id) == "RUNNING" else None

    child = wait_until(running_child, timeout=90, interval=0.02,
                       what="the run executing in a fresh child of the template")
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: state_of(run_id) == "CRASHED", timeout=90, interval=0.5,
               what="the runner to mark the run Crashed")
    assert is_gone(child)

    async def audit() -> dict[str, int]:
        async with get_client() as client:
            return await audit_once(client)

    assert asyncio.run(audit())["rescheduled"] >= 1
    alert = waiting(stack, alert_id, "acknowledge")
    assert alert["flow_run_id"] == run_id, "the same run, scheduled again"
    repaired = [e for e in alert["trace"] if e["step"] == "repaired"]
    assert repaired, alert["trace"]
    assert repaired[-1]["actor"] == "auditor"
    assert repaired[-1]["detail"]["action"] == "reschedule"
    assert "crashed" in repaired[-1]["detail"]["reason"]
    acked = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "alice"})
    assert acked.status_code == 200, acked.text
