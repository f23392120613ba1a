"""Benchmark of the alert intake: alerts accepted durably (2xx) per second, and latency.

Starts a Prefect server (SQLite; the intake asks it which sites exist), applies one site, then
serves three targets side by side, each its own uvicorn process on loopback:

- ``bare``: a FastAPI endpoint that parses the same JSON with the same native parser and
  writes nothing (bench/_bare_app.py): the ceiling of the framework on this machine;
- ``sqlite``: ``axtrace intake --no-background`` on a SQLite ledger (WAL, synchronous=NORMAL);
- ``postgres``: the same on PostgreSQL (a database created for the run), when reachable.

No dispatcher or sweeper runs (``--no-background``), so only acceptance is measured. Every alert
is a new occurrence (delivery + alert + received step + outbox row, one transaction). Rounds
alternate the targets (``--repeats``); medians are reported, because the machine is shared.

- max: ``--in-flight`` senders back to back for ``--max-seconds``: accepted/s, latency;
- steady: an open loop at ``--rate`` alerts/s for ``--steady-seconds``: latency from the
  planned send time (no coordinated omission).

Beside the rates, the CPU seconds the serving process used per alert at max (its own threads
only: PostgreSQL's work is in the database's processes) and what that means for one idle core:
on a shared machine this is steadier than the rate.

Prints one JSON object. Targets (issue 6): sqlite >= 1,000 alerts/s and >= 40 % of bare;
p99 < 50 ms at 200 alerts/s.

    /work/venv/bin/python bench/bench_intake.py [--repeats 3] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    PG_URL,
    Bench,
    bench,
    client,
    closed_loop,
    machine,
    median,
    open_loop,
    pg_database,
    postgres_available,
    sites_yaml,
    summary,
)

from axtrace.testing import free_port

SITE = "bench-site"


def body(target: str, i: int) -> bytes:
    return json.dumps({
        "site": SITE, "key": f"{target}-{i}", "title": "Weld seam anomaly on line 3",
        "severity": "high", "detector": "seam-vision", "detector_version": "2.4.1",
        "confidence": 0.93, "labels": {"line": "3", "camera": "c7"},
    }).encode()


def sender(http: httpx.AsyncClient, url: str, target: str) -> Any:
    async def send(i: int) -> bool:
        try:
            answer = await http.post(url + "/v1/alerts", content=body(target, i),
                                     headers={"content-type": "application/json"})
        except httpx.HTTPError:
            return False
        return answer.status_code == 202

    return send


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(targets: dict[str, tuple[str, int]], args: argparse.Namespace,
                  ) -> dict[str, Any]:
    results: dict[str, dict[str, list[Any]]] = {
        t: {"rate": [], "max_lat": [], "steady_lat": [], "steady_fail": [], "fail": [],
            "client_cpu_ms": [], "server_cpu_ms": []} for t in targets}
    async with client(args.in_flight) as http:
        next_id = dict.fromkeys(targets, 0)
        for name, (url, _pid) in targets.items():  # warm: connections, caches, the sites
            ok, *_ = await closed_loop(sender(http, url, name), in_flight=8, seconds=2)
            next_id[name] += ok + 1000
        for round_no in range(args.repeats):
            names = list(targets)
            shift = round_no % len(names)
            order = names[shift:] + names[:shift]  # each target goes first once
            for name in order:
                url, pid = targets[name]
                send = sender(http, url, name)
                cpu, server_cpu = time.process_time(), cpu_seconds(pid)
                ok, failed, lat, elapsed = await closed_loop(
                    send, in_flight=args.in_flight, seconds=args.max_seconds,
                    start=next_id[name])
                results[name]["client_cpu_ms"].append(
                    1000 * (time.process_time() - cpu) / max(1, ok + failed))
                results[name]["server_cpu_ms"].append(
                    1000 * (cpu_seconds(pid) - server_cpu) / max(1, ok + failed))
                next_id[name] += ok + failed + 10
                results[name]["rate"].append(ok / elapsed)
                results[name]["fail"].append(failed)
                results[name]["max_lat"].extend(lat)
                await asyncio.sleep(1)
                ok, failed, lat, _lag = await open_loop(
                    send, rate=args.rate, seconds=args.steady_seconds, start=next_id[name])
                next_id[name] += ok + failed + 10
                results[name]["steady_lat"].extend(lat)
                results[name]["steady_fail"].append(failed)
                await asyncio.sleep(1)
    return {name: {
        "max_alerts_per_s": median(r["rate"], 1),
        "max_alerts_per_s_rounds": [round(x, 1) for x in r["rate"]],
        "failed_at_max": sum(r["fail"]),
        "latency_at_max_ms": summary(r["max_lat"]),
        f"steady_{args.rate:g}_per_s_latency_ms": summary(r["steady_lat"]),
        "failed_at_steady": sum(r["steady_fail"]),
        "client_cpu_ms_per_request": median(r["client_cpu_ms"], 3),
        "server_cpu_ms_per_alert": median(r["server_cpu_ms"], 3),
        "one_core_capacity_alerts_per_s": round(1000 / median(r["server_cpu_ms"], 3), 1),
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
            found[f"{name}_to_bare_by_server_cpu"] = round(
                out["bare"]["server_cpu_ms_per_alert"] / got["server_cpu_ms_per_alert"], 3)
            found[f"{name}_ge_1000_per_s"] = got["max_alerts_per_s"] >= 1000
            found[f"{name}_ge_40pct_of_bare"] = got["max_alerts_per_s"] >= 0.4 * bare
            found[f"{name}_p99_lt_50ms_at_{rate:g}"] = (
                got[f"steady_{rate:g}_per_s_latency_ms"]["p99"] < 50)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--backends", default="sqlite,postgres",
                        help="ledgers to measure, comma-separated (postgres skipped if away)")
    parser.add_argument("--in-flight", type=int, default=32, help="concurrent requests at max")
    parser.add_argument("--max-seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=200.0, help="steady alerts per second")
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3, help="rounds over all targets")
    args = parser.parse_args()
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
    print(json.dumps({
        "benchmark": "intake", "machine": info,
        "config": {k: getattr(args, k) for k in ("in_flight", "max_seconds", "rate",
                                                  "steady_seconds", "repeats")},
        "postgres": use_pg, "targets": out, "reading": reading(out, args.rate),
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
