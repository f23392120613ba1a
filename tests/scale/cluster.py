"""AxTrace in its scaled-out shape, on loopback: every part a real, separate process.

    Prefect server  ── PostgreSQL (its own database) + Redis (messaging, cache, ordering,
                       concurrency leases, Docket)
    work pool "axtrace" (axtrace-process)  ◀── prefect worker xN   (each flow run a child
                       process, forked from the worker's warm template)
    axtrace intake xN (HTTP API + dispatcher + sweeper) ── ledger on PostgreSQL

The same commands an operator types (docs/scaling.md); only ports, databases and the poll
intervals are the test's. Read Prefect over its REST API, so that this process's own Prefect
settings (pointed at the session's stack by tests/conftest.py) do not matter.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from axtrace.runtime import spawn, start_child, start_prefect_server, stop, wait_healthy
from axtrace.testing import clean_environment, free_port
from tests.scale.services import PG_HOST, PG_PORT, PG_USER, REDIS_HOST, REDIS_PORT

REPO = Path(__file__).resolve().parents[2]
POOL = "axtrace"
POOL_TYPE = "axtrace-process"  # axtrace.worker: Prefect's process worker, warm executions


def cluster_env(workdir: Path, *, prefect_port: int, prefect_db: str, ledger_db: str,
                redis_db: int) -> dict[str, str]:
    """Environment shared by every process of the cluster (server, workers, intakes, CLI)."""
    return {
        **clean_environment(),
        "PREFECT_HOME": str(workdir / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL":
            f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{prefect_db}",
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": REDIS_HOST,
        "PREFECT_REDIS_MESSAGING_PORT": str(REDIS_PORT),
        "PREFECT_REDIS_MESSAGING_DB": str(redis_db),
        "PREFECT_SERVER_DOCKET_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
        "PREFECT_SERVER_DOCKET_NAME": f"axtrace-scale-{prefect_db}",
        # a run refused by a full deployment limit is retried after this (default 30 s)
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "AXTRACE_HOME": str(workdir),
        "AXTRACE_DATABASE_URL": f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{ledger_db}",
        "AXTRACE_SWEEP_SECONDS": "0.5",
    }


def write_sites(folder: Path, sites: dict[str, float]) -> Path:
    """A sites file with two levels per site (``{slug: acknowledge seconds}``), beside a link to
    the project's ``flows/`` (``axtrace sites apply`` looks for flows/respond.py upwards from the
    sites file, and the deployments' path becomes this folder)."""
    link = folder / "flows"
    if not link.exists():
        link.symlink_to(REPO / "flows", target_is_directory=True)
    lines = ["sites:"]
    for slug, ack in sites.items():
        lines += [
            f"  {slug}:",
            f"    description: Scale test site {slug}.",
            "    policy:",
            f"      owning_team: Team {slug}",
            "      escalation_chain:",
            "        - responders: [ann]",
            f"          acknowledge_within: {ack:g}s",
            "        - responders: [bo]",
            "          acknowledge_within: 1h",
            "      resolve_within: 1d",
        ]
    path = folder / "sites.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (read from /proc: Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class Cluster:
    """One scaled-out AxTrace: a Prefect server, workers and intakes, all on loopback."""

    workdir: Path
    env: dict[str, str]
    server: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    intakes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.env["PREFECT_API_URL"]

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A CLI command (``prefect ...`` or ``axtrace ...``) against this cluster."""
        module = {"prefect": "prefect", "axtrace": "axtrace"}[argv[0]]
        done = subprocess.run([sys.executable, "-m", module, *argv[1:]], env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n"
                               f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done

    # -- processes ----------------------------------------------------------------

    def start_server(self) -> None:
        port = int(self.api.split(":")[2].split("/")[0])
        self.server = start_prefect_server(port, self.log("prefect-server"), self.env)
        self.wait_up(f"{self.api}/health", self.server, "prefect-server")

    def wait_up(self, url: str, proc: subprocess.Popen[bytes], name: str) -> None:
        """Wait for ``url``; on failure say why, with the end of the process's log."""
        try:
            wait_healthy(url, timeout=240, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            tail = self.log(name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} did not come up: {exc}\n{tail}") from exc

    def set_up(self, sites: Path) -> None:
        """Ledger schema, the work pool, and every site's block and deployment."""
        self.run("axtrace", "db", "upgrade")
        self.run("prefect", "work-pool", "create", POOL, "--type", POOL_TYPE)
        self.run("axtrace", "sites", "apply", str(sites), "--work-pool", POOL)

    def start_worker(self, name: str, *, limit: int) -> None:
        self.workers[name] = spawn(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--name", name,
             "--type", POOL_TYPE, "--limit", str(limit)], self.log(name), self.env)

    def start_intake(self) -> int:
        port = free_port()
        proc = start_child(["intake", "--port", str(port)], self.log(f"intake-{port}"), self.env)
        self.intakes[port] = proc
        self.wait_up(f"http://127.0.0.1:{port}/healthz", proc, f"intake-{port}")
        return port

    def close(self) -> None:
        for proc in (*self.intakes.values(), *self.workers.values()):
            stop(proc, timeout=15)
        stop(self.server, timeout=30)

    def templates(self) -> dict[str, int]:
        """Each worker's warm template: its ``multiprocessing`` forkserver child (by pid)."""
        found: dict[str, int] = {}
        for name, proc in self.workers.items():
            for pid in children(proc.pid):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:  # gone meanwhile
                    continue
                if b"multiprocessing.forkserver" in argv:
                    found[name] = pid
        return found

    # -- reading Prefect ------------------------------------------------------------

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        answer = httpx.request(method, self.api + path, json=body, timeout=60)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def flow_runs(self, **flow_runs_filter: Any) -> list[dict[str, Any]]:
        """Every flow run matching ``flow_runs_filter`` (Prefect's FlowRunFilter, as JSON)."""
        runs: list[dict[str, Any]] = []
        while True:
            page = self.rest("POST", "/flow_runs/filter", {
                "flow_runs": flow_runs_filter, "limit": 200, "offset": len(runs)})
            runs.extend(page)
            if len(page) < 200:
                return runs

    def states(self, run_id: str) -> list[dict[str, Any]]:
        """The state history of one flow run, oldest first."""
        found: list[dict[str, Any]] = self.rest("GET", f"/flow_run_states/?flow_run_id={run_id}")
        return sorted(found, key=lambda s: s["timestamp"])

    def events(self, prefix: str) -> list[dict[str, Any]]:
        """Every persisted event whose name starts with ``prefix`` (paged)."""
        answer = self.rest("POST", "/events/filter", {
            "filter": {"event": {"prefix": [prefix]}, "occurred": {"since": "2000-01-01T00:00Z"}},
            "limit": 50})
        events: list[dict[str, Any]] = answer["events"]
        while answer.get("next_page"):
            page = httpx.get(answer["next_page"], timeout=60)
            page.raise_for_status()
            answer = page.json()
            events.extend(answer["events"])
        return events

    def limit_site(self, site: str, limit: int) -> None:
        """Give the site's deployment a concurrency limit (what AXTRACE_SITE_CONCURRENCY would
        make ``axtrace sites apply`` do; see docs/scaling.md)."""
        deployment = self.rest("GET", f"/deployments/name/respond-to-alert/{site}")
        self.rest("PATCH", f"/deployments/{deployment['id']}", {
            "concurrency_limit": limit,
            "concurrency_options": {"collision_strategy": "ENQUEUE"}})
