"""Benchmark of the path from an accepted alert to Prefect: alert -> flow run created, and
alert -> owner notified (the ``notified`` step), at a steady rate, on a real stack.

Starts ``axtrace.testing.Stack`` (Prefect server on SQLite, ``axtrace serve`` serving every site,
``axtrace intake`` with its dispatcher and sweeper, SQLite ledger: the embedded default), posts
``--count`` alerts at ``--rate`` alerts/s spread over ``--sites`` sites, and reads the timestamps
back: ``received_at`` of the alert (ledger), ``created`` of its flow run (Prefect), ``at`` of
its ``notified`` step (ledger). With ``--no-serve`` nothing executes the runs, which isolates the
dispatcher (then only "run created" is measured, and a higher rate makes sense).

Prints one JSON object. Target (issue 6): alert -> run created, median under 1 s.

    /work/venv/bin/python bench/bench_dispatch.py [--rate 0.25] [--count 20] [--no-serve]
"""

from __future__ import annotations

import argparse
import functools
import json
import sqlite3
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _harness import inside, machine, sites_yaml, summary

from axtrace.testing import Stack, wait_until


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_created(stack: Stack, run_ids: list[str]) -> dict[str, datetime]:
    created: dict[str, datetime] = {}
    for start in range(0, len(run_ids), 200):  # the server answers at most 200 per page
        found = httpx.post(stack.env["PREFECT_API_URL"] + "/flow_runs/filter", timeout=60,
                           json={"flow_runs": {"id": {"any_": run_ids[start:start + 200]}},
                                 "limit": 200}).json()
        created |= {r["id"]: stamp(r["created"]) for r in found}
    return created


def outbox_retries(ledger: Path) -> dict[str, Any]:
    """How often the dispatcher had to try again, and why (the first 80 characters of the
    last error of each retried row)."""
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT attempts, last_error FROM outbox WHERE attempts > 0").fetchall()
    return {"rows_retried": len(rows), "attempts_max": max((a for a, _ in rows), default=0),
            "last_errors": dict(Counter((e or "")[:80] for _, e in rows).most_common(5))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--rate", type=float, default=0.25, help="alerts per second")
    parser.add_argument("--count", type=int, default=20, help="alerts in all")
    parser.add_argument("--sites", type=int, default=5)
    parser.add_argument("--serve", action=argparse.BooleanOptionalAction, default=True,
                        help="execute the runs (needed for alert -> notified)")
    args = parser.parse_args()
    started = time.perf_counter()
    info = machine()
    sites = [f"site-{i:02d}" for i in range(args.sites)]
    with tempfile.TemporaryDirectory(prefix="axtrace-bench-dispatch-") as tmp:
        workdir = Path(tmp)
        path = sites_yaml(workdir, sites)
        with inside(workdir), Stack.start(workdir, sites=path, serve=args.serve) as stack:
            ready = time.perf_counter()
            ids: list[int] = []
            begin = time.perf_counter()
            for i in range(args.count):
                delay = begin + i / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                ids.append(stack.raise_alert(sites[i % len(sites)], f"Bench {i}", key=f"b{i}"))

            def done(alert_id: int) -> dict[str, Any] | None:
                alert = stack.alert(alert_id)
                if not alert["flow_run_id"]:
                    return None
                if args.serve and "notified" not in [e["step"] for e in alert["trace"]]:
                    return None
                return alert

            alerts = [wait_until(functools.partial(done, alert_id), timeout=600, interval=0.5,
                                 what=f"alert {alert_id}") for alert_id in ids]
            created = run_created(stack, [a["flow_run_id"] for a in alerts])
            retries = outbox_retries(workdir / "axtrace.db")
    to_run = [(created[a["flow_run_id"]] - stamp(a["received_at"])).total_seconds()
              for a in alerts]
    notified = [(stamp(next(e["at"] for e in a["trace"] if e["step"] == "notified"))
                 - stamp(a["received_at"])).total_seconds() for a in alerts] if args.serve else []
    out = {
        "benchmark": "dispatch", "machine": info,
        "config": {"rate_per_s": args.rate, "count": args.count, "sites": args.sites,
                   "serve": args.serve, "dispatch_poll_s": 0.5, "runner_poll_s": 1},
        "alert_to_run_created_ms": summary(to_run),
        "alert_to_notified_ms": summary(notified),
        "outbox_retries": retries,
        "reading": {"run_created_median_lt_1s": summary(to_run)["p50"] < 1000},
        "stack_start_s": round(ready - started, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
