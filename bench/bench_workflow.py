"""Benchmark of the per-alert cost of the standard workflow against a bare Prefect flow with the
same number of tasks, served the same way, in the same run.

Starts a Prefect server (SQLite), one site, ``axtrace intake`` (dispatcher, sweeper) and
``axtrace serve``; beside it bench/_serve_bare.py serves bench/_bare_flows.py with the same
Runner settings. Runs go one at a time, standard and bare alternating:

- ``first_wait``: respond-to-alert from its run's creation until it is suspended at its first
  wait (record, assign, notify: 3 tasks, plus the ledger, the events, the policy block, the
  artifact, the form) against ``bare-first-wait`` (3 empty tasks) until Completed;
- ``to_close``: respond-to-alert answered at once (acknowledge, then resolve, through the AxTrace
  API as soon as the run waits): 8 tasks over 3 executions, against ``bare-to-close`` (8 empty
  tasks, the same 2 suspensions, resumed through Prefect's API as soon as it waits).

Per run: ``wall`` (created -> suspended/completed, includes the runner's 1 s poll and, for
to_close, the answers), ``executing`` (each execution from Pending, when the runner starts the
process, to Paused/Completed; summed), and CPU seconds of the run processes (children of the
serving process). Prints one JSON object; the ratios are standard / bare of the medians.
Target (issue 6): overhead <= 1.3x the bare flow.

    /work/venv/bin/python bench/bench_workflow.py [--runs 8] [--close-runs 4]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _harness import Bench, bench, machine, sites_yaml, summary

from axtrace.testing import wait_until

SITE = "wf-site"
HERE = Path(__file__).resolve().parent


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _reaped_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int) -> float:
    """CPU seconds of the finished run processes of serving process ``pid``: its own reaped
    children (spawned executions) and those of its live children (warm executions are
    children of the template process, which reaps them)."""
    total = _reaped_cpu(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):  # ended since: counted in ``pid``
                total += _reaped_cpu(int(child))
    return total


class Busy(Exception):
    """Prefect answered 429/503: try again."""


class Runs:
    """Talking to the benchmark's Prefect server and AxTrace API."""

    def __init__(self, run: Bench, api: str) -> None:
        retrying = httpx.HTTPTransport(retries=3)
        self.prefect = httpx.Client(base_url=run.prefect_api, timeout=60, transport=retrying,
                                    event_hooks={"response": [self.retry_later]})
        self.api = httpx.Client(base_url=api, timeout=60)
        self.n = 0

    def retry_later(self, response: httpx.Response) -> None:
        """Prefect's SQLite server answers 503 when its database is busy: its own client
        retries those; so does this one (by failing the call, which ``call`` repeats)."""
        if response.status_code in (429, 503):
            response.read()
            raise Busy(response.status_code)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(8):
            try:
                return self.prefect.request(method, path, **kwargs)
            except Busy:
                time.sleep(0.25 * 2**attempt)
        raise RuntimeError(f"Prefect stayed busy for {method} {path}")

    def state(self, run_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", f"/flow_runs/{run_id}").json()
        return found

    def wait_state(self, run_id: str, kind: str, key: str | None = None) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            run = self.state(run_id)
            state = run.get("state") or {}
            if state.get("type") != kind:
                return None
            if key and (state.get("state_details") or {}).get("pause_key") != key:
                return None
            return run

        found: dict[str, Any] = wait_until(probe, timeout=300, interval=0.1,
                                           what=f"run {run_id} {kind} {key or ''}")
        return found

    def measure(self, run_id: str, end: dict[str, Any]) -> tuple[float, float]:
        """(wall, executing) seconds of a run, from its state history."""
        states = sorted(self.call("GET", f"/flow_run_states/?flow_run_id={run_id}").json(),
                        key=lambda s: s["timestamp"])
        executing, began = 0.0, None
        for state in states:
            if state["type"] == "PENDING":
                began = stamp(state["timestamp"])
            elif state["type"] in ("PAUSED", "COMPLETED") and began is not None:
                executing += (stamp(state["timestamp"]) - began).total_seconds()
                began = None
        wall = (stamp(end["state"]["timestamp"]) - stamp(end["created"])).total_seconds()
        return wall, executing

    # -- the standard workflow, through the intake --------------------------------

    def alert(self) -> tuple[int, str]:
        self.n += 1
        alert_id = int(self.api.post("/v1/alerts", json={
            "site": SITE, "key": f"wf-{self.n}", "title": "Workflow bench"}).json()["id"])

        def run_id() -> str | None:
            found: str | None = self.api.get(f"/v1/alerts/{alert_id}").json()["flow_run_id"]
            return found

        return alert_id, wait_until(run_id, timeout=300, interval=0.1, what="run created")

    def standard_first_wait(self) -> tuple[float, float]:
        _alert_id, run_id = self.alert()
        return self.measure(run_id, self.wait_state(run_id, "PAUSED", "acknowledge-0"))

    def standard_to_close(self) -> tuple[float, float]:
        alert_id, run_id = self.alert()
        self.wait_state(run_id, "PAUSED", "acknowledge-0")
        self.api.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "ann"}).raise_for_status()
        self.wait_state(run_id, "PAUSED", "resolve-1")
        self.api.post(f"/v1/alerts/{alert_id}/resolve",
                      json={"responder": "ann", "outcome": "fixed"}).raise_for_status()
        return self.measure(run_id, self.wait_state(run_id, "COMPLETED"))

    # -- the bare flows, through Prefect ------------------------------------------

    def bare_run(self, flow: str) -> str:
        deployment = self.call("GET", f"/deployments/name/{flow}/bench").json()
        self.n += 1
        created = self.call("POST", f"/deployments/{deployment['id']}/create_flow_run",
                            json={"parameters": {"alert_id": self.n}})
        created.raise_for_status()
        return str(created.json()["id"])

    def bare_two_tasks(self) -> tuple[float, float]:
        run_id = self.bare_run("bare-two-tasks")
        return self.measure(run_id, self.wait_state(run_id, "COMPLETED"))

    def bare_first_wait(self) -> tuple[float, float]:
        run_id = self.bare_run("bare-first-wait")
        return self.measure(run_id, self.wait_state(run_id, "COMPLETED"))

    def bare_to_close(self) -> tuple[float, float]:
        run_id = self.bare_run("bare-to-close")
        for key in ("acknowledge", "resolve"):
            self.wait_state(run_id, "PAUSED", key)
            self.call("POST", f"/flow_runs/{run_id}/resume", json={}).raise_for_status()
        return self.measure(run_id, self.wait_state(run_id, "COMPLETED"))


def compare(runs: Runs, count: int, standard: Any, bare: Any, pids: tuple[int, int],
            ) -> dict[str, Any]:
    got: dict[str, dict[str, list[float]]] = {
        "standard": {"wall": [], "executing": []}, "bare": {"wall": [], "executing": []}}
    cpu0 = (children_cpu(pids[0]), children_cpu(pids[1]))
    for _ in range(count):
        for name, one in (("standard", standard), ("bare", bare)):
            wall, executing = one()
            got[name]["wall"].append(wall)
            got[name]["executing"].append(executing)
    time.sleep(2)  # let the serving processes reap the last run processes
    cpu = {"standard": (children_cpu(pids[0]) - cpu0[0]) / count,
           "bare": (children_cpu(pids[1]) - cpu0[1]) / count}
    out: dict[str, Any] = {name: {
        "wall_ms": summary(v["wall"]), "executing_ms": summary(v["executing"]),
        "run_process_cpu_s_per_alert": round(cpu[name], 3)} for name, v in got.items()}
    out["ratio"] = {
        "executing_median": round(statistics.median(got["standard"]["executing"])
                                  / statistics.median(got["bare"]["executing"]), 3),
        "wall_median": round(statistics.median(got["standard"]["wall"])
                             / statistics.median(got["bare"]["wall"]), 3),
        "cpu": round(cpu["standard"] / cpu["bare"], 3) if cpu["bare"] else None,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--runs", type=int, default=8, help="first-wait runs of each kind")
    parser.add_argument("--close-runs", type=int, default=4, help="to-close runs of each kind")
    args = parser.parse_args()
    started = time.perf_counter()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="axtrace-bench-workflow-") as tmp, \
            bench(Path(tmp)) as run:
        run.start_prefect()
        sites = sites_yaml(run.workdir, [SITE])
        run.cli("sites", "apply", str(sites))
        api = run.start_intake(background=True)
        run.start_serve(sites)
        serve_pid = run.procs[-1].pid
        run.start("serve-bare", [sys.executable, str(HERE / "_serve_bare.py")])
        bare_pid = run.procs[-1].pid
        runs = Runs(run, api)
        wait_until(lambda: runs.call("GET", "/deployments/name/bare-to-close/bench")
                   .status_code == 200, timeout=120, what="bare flows served")
        runs.standard_first_wait()  # warm: caches, the policy block, the first imports
        runs.bare_first_wait()
        pids = (serve_pid, bare_pid)
        first = compare(runs, args.runs, runs.standard_first_wait, runs.bare_first_wait, pids)
        close = compare(runs, args.close_runs, runs.standard_to_close, runs.bare_to_close,
                        pids)
        yardstick = compare(runs, args.runs, runs.standard_first_wait, runs.bare_two_tasks,
                            pids)
    # respond-to-alert: 1 execution to its first wait, 3 to close (start, after the
    # acknowledgement, after the resolution); the yardstick is one bare two-task execution.
    bare_exec = yardstick["bare"]["run_process_cpu_s_per_alert"]
    per_execution = {
        "first_wait": first["standard"]["run_process_cpu_s_per_alert"],
        "to_close": round(close["standard"]["run_process_cpu_s_per_alert"] / 3, 3),
        "bare_two_task_spawned": bare_exec,
    }
    per_execution["ratio_first_wait"] = round(per_execution["first_wait"] / bare_exec, 3)
    per_execution["ratio_to_close"] = round(per_execution["to_close"] / bare_exec, 3)
    print(json.dumps({
        "benchmark": "workflow", "machine": info,
        "config": {"runs": args.runs, "close_runs": args.close_runs, "runner_poll_s": 1},
        "execution": os.environ.get("AXTRACE_EXECUTION", "warm"),
        "first_wait": first, "to_close": close, "yardstick": yardstick,
        "cpu_s_per_execution": per_execution,
        "reading": {"cpu_per_execution_le_0_3x_bare_spawned":
                    max(per_execution["ratio_first_wait"], per_execution["ratio_to_close"])
                    <= 0.3,"first_wait_le_1_3x_bare": first["ratio"]["executing_median"] <= 1.3,
                    "to_close_le_1_3x_bare": close["ratio"]["executing_median"] <= 1.3},
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
