"""Benchmark of the alert intake: alerts accepted durably (202) per second, CPU, and latency.

Starts a Prefect server (SQLite; the intake asks it which sites exist), applies one site, then
serves the targets side by side, each its own uvicorn process on loopback:

- ``bare``: a FastAPI endpoint that parses the same JSON with the same native parser and
  writes nothing (bench/_bare_app.py): the ceiling of the framework on this machine;
- ``sqlite``: ``axtrace intake --no-background`` on a SQLite ledger (WAL, synchronous=NORMAL);
- ``postgres``: the same on PostgreSQL (a database created for the run), when reachable and
  asked for (``--backends sqlite,postgres``).

No dispatcher or sweeper runs (``--no-background``), so only acceptance is measured. Every alert
is a new occurrence (delivery + alert + received step + outbox row, one transaction). Rounds
alternate the targets (``--repeats``, each target goes first once); medians are reported,
because the machine is shared.

- max: Debian's ``wrk`` (compiled, ``-t2``) with ``--connections`` connections for
  ``--max-seconds``, posting ``{"site", "key", "title"}`` with a distinct key per request
  (bench/intake_post.lua): 202 answers per second and wrk's latency;
- steady: this harness's open-loop generator (``_harness.http_open_loop``: raw HTTP/1.1 on
  asyncio streams, a few microseconds of client CPU per request) at ``--rate`` alerts/s for
  ``--steady-seconds``: latency counted from the planned send time, so a slow answer cannot
  hold the next request back (no coordinated omission; wrk has no fixed-rate mode, and wrk2 is
  not in Debian).

Beside the rates, the CPU seconds the serving process used per accepted alert at max (user +
system of all its threads, from /proc/PID/stat before and after; PostgreSQL's work is in the
database's processes). Prints one JSON object. Targets (issue 10): sqlite >= 1,000 alerts/s
and >= 40 % of bare; <= 1 ms of intake CPU per alert; p99 < 50 ms at 200 alerts/s.

    .venv/bin/python bench/bench_intake.py [--repeats 3] [--backends sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import (
    PG_URL,
    Bench,
    bench,
    http_open_loop,
    machine,
    median,
    pg_database,
    postgres_available,
    sites_yaml,
    summary,
)

from axtrace.testing import free_port

SITE = "bench-site"
LUA = Path(__file__).parent / "intake_post.lua"


def body(prefix: str, i: int) -> bytes:
    return json.dumps({"site": SITE, "key": f"{prefix}-{i}",
                       "title": "Weld seam anomaly on line 3"}).encode()


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, *, connections: int, seconds: float, prefix: str) -> dict[str, Any]:
    """One wrk run against ``url``/v1/alerts; the counts its Lua script reports."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", str(LUA), f"{url}/v1/alerts", "--", prefix, SITE]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                          check=True)
    found = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk said: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(found.group(1))
    return result


async def steady(url: str, *, rate: float, seconds: float, prefix: str,
                 ) -> tuple[int, int, list[float]]:
    host, port = url.removeprefix("http://").split(":")
    return await http_open_loop(host, int(port), "/v1/alerts", lambda i: body(prefix, i),
                                rate=rate, seconds=seconds)


async def measure(targets: dict[str, tuple[str, int]], args: argparse.Namespace,
                  ) -> dict[str, Any]:
    keys = ("rate", "cpu_ms", "p50", "p99", "not_accepted", "steady_lat", "steady_fail")
    results: dict[str, dict[str, list[Any]]] = {t: {k: [] for k in keys} for t in targets}
    run_id = secrets.token_hex(3)
    for name, (url, _pid) in targets.items():  # warm: connections, caches, the sites
        await asyncio.to_thread(run_wrk, url, connections=8, seconds=2,
                                prefix=f"{run_id}-warm-{name}")
        await steady(url, rate=50, seconds=1, prefix=f"{run_id}-warm-s-{name}")
    for round_no in range(args.repeats):
        names = list(targets)
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            url, pid = targets[name]
            before = cpu_seconds(pid)
            got = await asyncio.to_thread(
                run_wrk, url, connections=args.connections, seconds=args.max_seconds,
                prefix=f"{run_id}-{round_no}-{name}")
            used = cpu_seconds(pid) - before
            r = results[name]
            r["rate"].append(got["accepted"] / (got["duration_us"] / 1e6))
            r["cpu_ms"].append(1000 * used / max(1, got["accepted"]))
            r["p50"].append(got["p50_us"] / 1000)
            r["p99"].append(got["p99_us"] / 1000)
            r["not_accepted"].append(got["other_status"] + got["errors"])
            await asyncio.sleep(1)
            _ok, failed, lat = await steady(
                url, rate=args.rate, seconds=args.steady_seconds,
                prefix=f"{run_id}-{round_no}-steady-{name}")
            r["steady_lat"].extend(lat)
            r["steady_fail"].append(failed)
            await asyncio.sleep(1)
    return {name: {
        "max_alerts_per_s": median(r["rate"], 1),
        "max_alerts_per_s_rounds": [round(x, 1) for x in r["rate"]],
        "not_accepted_at_max": sum(r["not_accepted"]),
        "latency_at_max_ms": {"p50": median(r["p50"], 1), "p99": median(r["p99"], 1)},
        "server_cpu_ms_per_alert": median(r["cpu_ms"], 3),
        "server_cpu_ms_per_alert_rounds": [round(x, 3) for x in r["cpu_ms"]],
        f"steady_{args.rate:g}_per_s_latency_ms": summary(r["steady_lat"]),
        "failed_at_steady": sum(r["steady_fail"]),
    } for name, r in results.items()}


def start_targets(run: Bench, backends: list[str], pg_db: str | None,
                  ) -> dict[str, tuple[str, int]]:
    """Each target's URL and the pid of the process serving it."""
    port = free_port()
    bare = run.start("bare", [sys.executable, str(Path(__file__).parent / "_bare_app.py"),
                              "--port", str(port)], health=f"http://127.0.0.1:{port}/healthz")
    targets = {"bare": (f"http://127.0.0.1:{port}", bare.pid)}
    if "sqlite" in backends:
        targets["sqlite"] = (run.start_intake(background=False), run.procs[-1].pid)
    if "postgres" in backends and pg_db:
        env = {**run.env, "AXTRACE_DATABASE_URL": PG_URL.format(db=pg_db)}
        targets["postgres"] = (run.start_intake(background=False, env=env), run.procs[-1].pid)
    return targets


def reading(out: dict[str, Any], rate: float) -> dict[str, Any]:
    bare = out["bare"]["max_alerts_per_s"]
    found: dict[str, Any] = {}
    for name in ("sqlite", "postgres"):
        if name in out:
            got = out[name]
            found[f"{name}_to_bare"] = round(got["max_alerts_per_s"] / bare, 3)
            found[f"{name}_ge_1000_per_s"] = got["max_alerts_per_s"] >= 1000
            found[f"{name}_ge_40pct_of_bare"] = got["max_alerts_per_s"] >= 0.4 * bare
            found[f"{name}_cpu_le_1ms_per_alert"] = got["server_cpu_ms_per_alert"] <= 1.0
            found[f"{name}_p99_lt_50ms_at_{rate:g}"] = (
                got[f"steady_{rate:g}_per_s_latency_ms"]["p99"] < 50)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--backends", default="sqlite",
                        help="ledgers to measure, comma-separated: sqlite, postgres "
                             "(postgres skipped if away)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections at max")
    parser.add_argument("--max-seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=200.0, help="steady alerts per second")
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3, help="rounds over all targets")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    backends = args.backends.split(",")
    use_pg = "postgres" in backends and postgres_available()
    started = time.perf_counter()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="axtrace-bench-intake-") as tmp:
        workdir = Path(tmp)
        with bench(workdir) as run:
            run.start_prefect()
            run.cli("sites", "apply", str(sites_yaml(workdir, [SITE])))
            if use_pg:
                with pg_database() as db:
                    run.cli("db", "upgrade",
                            env={**run.env, "AXTRACE_DATABASE_URL": PG_URL.format(db=db)})
                    targets = start_targets(run, backends, db)
                    out = asyncio.run(measure(targets, args))
                    run.close()
            else:
                targets = start_targets(run, backends, None)
                out = asyncio.run(measure(targets, args))
    info["load_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps({
        "benchmark": "intake", "machine": info, "load_generator": "wrk 4.1 -t2 (max), "
        "_harness.http_open_loop (steady)",
        "config": {k: getattr(args, k) for k in ("connections", "max_seconds", "rate",
                                                  "steady_seconds", "repeats")},
        "postgres": use_pg, "targets": out, "reading": reading(out, args.rate),
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
