"""What the benchmarks share: real processes on loopback, throw-away databases, statistics.

Every benchmark starts what it measures as separate processes (a Prefect server, ``axtrace
intake``, ``axtrace serve``), exactly as an operator would, in a temporary folder, and stops
them before it prints its one JSON object. PostgreSQL (127.0.0.1:5432, user postgres) is used
only when asked, in a database created for the run and dropped after it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from axtrace.runtime import spawn, start_prefect_server, stop, wait_healthy
from axtrace.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
PG = "host=127.0.0.1 port=5432 user=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


# --------------------------------------------------------------------------- statistics


def summary(values: list[float], scale: float = 1000.0, digits: int = 1) -> dict[str, Any]:
    """Count, median, p90, p99, max (in ms by default) of ``values`` (seconds)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * scale, digits)

    return {"n": len(values), "p50": round(statistics.median(ordered) * scale, digits),
            "p90": pct(0.90), "p99": pct(0.99), "max": round(ordered[-1] * scale, digits)}


def median(values: list[float], digits: int = 3) -> float:
    return round(statistics.median(values), digits)


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the load says how noisy it was)."""
    return {"cpus": os.cpu_count(), "load_1m_at_start": round(os.getloadavg()[0], 2),
            "python": sys.version.split()[0]}


# --------------------------------------------------------------------------- databases


@contextmanager
def pg_database(prefix: str = "axtrace_bench") -> Iterator[str]:
    """A fresh PostgreSQL database (its name), dropped afterwards."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(PG + " dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG + " dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG + " dbname=postgres", connect_timeout=3):
            return True
    except Exception:
        return False


# --------------------------------------------------------------------------- processes


def sites_yaml(folder: Path, sites: list[str], *, ack: str = "1h") -> Path:
    """A sites file for ``sites`` beside a link to the project's flows/ (``axtrace sites apply``
    looks for flows/respond.py upwards from the file; deployments then run from ``folder``)."""
    link = folder / "flows"
    if not link.exists():
        link.symlink_to(ROOT / "flows", target_is_directory=True)
    lines = ["sites:"]
    for site in sites:
        lines += [f"  {site}:", "    policy:", f"      owning_team: Team {site}",
                  "      escalation_chain:", "        - responders: [ann, ben]",
                  f"          acknowledge_within: {ack}", "      resolve_within: 1d"]
    path = folder / f"sites-{len(sites)}-{sites[0]}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Bench:
    """Processes of one benchmark run, all on loopback, stopped in reverse order."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def prefect_api(self) -> str:
        return self.env["PREFECT_API_URL"]

    def base_env(self, *, prefect_port: int, ledger_url: str | None = None) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AXTRACE_"))}
        self.env = {
            **base,
            "PREFECT_HOME": str(self.workdir / "prefect"),
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "AXTRACE_HOME": str(self.workdir),
            "AXTRACE_DATABASE_URL": ledger_url or f"sqlite:///{self.workdir / 'axtrace.db'}",
            "AXTRACE_SWEEP_SECONDS": "1",
            "AXTRACE_RUNNER_POLL_SECONDS": "1",
        }

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def start_prefect(self, *, database: str | None = None) -> None:
        """The Prefect server: SQLite in the work folder, or the named PostgreSQL database."""
        env = dict(self.env)
        if database:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = (
                f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
        port = int(self.prefect_api.split(":")[2].split("/")[0])
        proc = start_prefect_server(port, self.log("prefect-server"), env)
        self.procs.append(proc)
        wait_healthy(f"{self.prefect_api}/health", timeout=300, proc=proc)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> float:
        """Run ``axtrace ARGS``; its wall time in seconds."""
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "axtrace", *args], env=env or self.env,
                              capture_output=True, text=True, timeout=3600, check=False)
        if done.returncode:
            raise RuntimeError(f"axtrace {' '.join(args)}: {done.stdout[-2000:]}"
                               f"{done.stderr[-3000:]}")
        return time.perf_counter() - started

    def start(self, name: str, argv: list[str], *, health: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = spawn(argv, self.log(name), env or self.env)
        self.procs.append(proc)
        if health:
            wait_healthy(health, timeout=120, proc=proc)
        return proc

    def start_intake(self, *, background: bool, env: dict[str, str] | None = None) -> str:
        port = free_port()
        argv = [sys.executable, "-m", "axtrace", "intake", "--port", str(port)]
        if not background:
            argv.append("--no-background")
        self.start(f"intake-{port}", argv, health=f"http://127.0.0.1:{port}/healthz", env=env)
        return f"http://127.0.0.1:{port}"

    def start_serve(self, sites: Path) -> None:
        self.start("serve", [sys.executable, "-m", "axtrace", "serve", "--sites", str(sites)])

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc, timeout=20)
        self.procs.clear()


@contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Work from ``folder``: children inherit it as their working directory. A served run
    process copies its deployment's folder into its working directory unless they are the
    same, so serving processes must start in the folder the deployments point at."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@contextmanager
def bench(workdir: Path, *, ledger_url: str | None = None) -> Iterator[Bench]:
    running = Bench(workdir)
    running.base_env(prefect_port=free_port(), ledger_url=ledger_url)
    try:
        with inside(workdir):
            yield running
    finally:
        running.close()


# --------------------------------------------------------------------------- load


async def closed_loop(send: Callable[[int], Awaitable[bool]], *, in_flight: int,
                      seconds: float, start: int = 0) -> tuple[int, int, list[float], float]:
    """``in_flight`` senders back to back for ``seconds``: (ok, failed, latencies, elapsed)."""
    latencies: list[float] = []
    ok = failed = 0
    counter = iter(range(start, start + 10**9))
    began = time.perf_counter()
    stop_at = began + seconds

    async def sender() -> None:
        nonlocal ok, failed
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            good = await send(next(counter))
            latencies.append(time.perf_counter() - t0)
            ok, failed = ok + good, failed + (not good)

    await asyncio.gather(*(sender() for _ in range(in_flight)))
    return ok, failed, latencies, time.perf_counter() - began


async def open_loop(send: Callable[[int], Awaitable[bool]], *, rate: float, seconds: float,
                    start: int = 0) -> tuple[int, int, list[float], float]:
    """Requests started at a steady ``rate`` whatever the answers take (no coordinated
    omission: latency counts from the planned start). (ok, failed, latencies, lag_max)."""
    latencies: list[float] = []
    results: list[bool] = []
    began = time.perf_counter()
    lag = 0.0

    async def one(i: int, planned: float) -> None:
        results.append(await send(start + i))
        latencies.append(time.perf_counter() - planned)

    tasks = []
    for i in range(int(rate * seconds)):
        planned = began + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag = max(lag, -delay)
        tasks.append(asyncio.create_task(one(i, planned)))
    await asyncio.gather(*tasks)
    return sum(results), len(results) - sum(results), latencies, lag


def client(limit: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=limit,
                                                             max_keepalive_connections=limit))


async def http_open_loop(host: str, port: int, path: str, make_body: Callable[[int], bytes], *,
                         rate: float, seconds: float, connections: int = 16,
                         ) -> tuple[int, int, list[float]]:
    """POSTs of ``make_body(i)`` started at a steady ``rate`` whatever the answers take, on
    keep-alive HTTP/1.1 connections written and read directly on asyncio streams (a few
    microseconds of client CPU each, so the client does not add its own queueing on a small
    machine). ``connections`` are opened before the clock starts; when all are busy a new one
    is opened rather than waiting (open loop). Latency counts from the planned start (no
    coordinated omission). (accepted (2xx), failed, latencies)."""
    idle = [await asyncio.open_connection(host, port) for _ in range(connections)]
    latencies: list[float] = []
    statuses: list[int] = []

    async def one(i: int, planned: float) -> None:
        reader, writer = idle.pop() if idle else await asyncio.open_connection(host, port)
        body = make_body(i)
        try:
            writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (path.encode(), host.encode(),
                                                           len(body), body))
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            statuses.append(0)
            writer.close()
            return
        latencies.append(time.perf_counter() - planned)
        statuses.append(status)
        idle.append((reader, writer))

    began = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        planned = began + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, planned)))
    await asyncio.gather(*tasks)
    for _reader, writer in idle:
        writer.close()
    ok = sum(200 <= s < 300 for s in statuses)
    return ok, len(statuses) - ok, latencies
