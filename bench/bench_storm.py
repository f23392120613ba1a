"""Benchmark of an alert storm: ``--deliveries`` deliveries in one burst, 90 % duplicates, over
``--sites`` sites; occurrences and runs created (each must equal the unique count), and the time
until the dispatcher has drained the outbox.

Starts a Prefect server (SQLite, or PostgreSQL with ``--prefect postgres``), applies the sites,
and one ``axtrace intake`` with its dispatcher (ledger on SQLite, or PostgreSQL with ``--ledger
postgres``). Beside the storm, on the same server, a bare client creates ``unique / 2`` runs of
a trivial deployment with 8 requests in flight before the storm and again after it: the
storm's run creation rate is reported against theirs. Nothing executes the runs (like
tests/reliability's ``bare`` stack): the storm is about acceptance and run creation. The
burst is shuffled: of each occurrence's ten deliveries, about half repeat it with another body
(counted as repeats) and half are byte-identical re-deliveries (answered from the first);
senders retry 503s as Alertmanager would.

Prints one JSON object.

    /work/venv/bin/python bench/bench_storm.py [--deliveries 10000] [--ledger postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _harness import PG_URL, Bench, bench, client, machine, pg_database, sites_yaml, summary
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from axtrace.ledger.db import make_engine
from axtrace.ledger.models import Alert, Delivery, OutboxItem
from axtrace.workflow import FLOW_NAME


def deliveries(count: int, unique: int, sites: list[str], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    bodies = []
    for n in range(count):
        i = n % unique  # occurrence i gets deliveries n = i, i + unique, i + 2 * unique, ...
        site = sites[i % len(sites)]
        repeat = n // unique
        title = "Storm alert" if repeat == 0 or repeat % 2 == 0 else f"Storm alert, again {n}"
        bodies.append(json.dumps({"site": site, "key": f"storm-{i}", "title": title,
                                  "severity": "critical"}).encode())
    rng.shuffle(bodies)
    return bodies


async def burst(url: str, bodies: list[bytes], in_flight: int) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    answers: Counter[str] = Counter()
    latencies: list[float] = []
    retries = 0
    queue = iter(bodies)

    async def sender(http: httpx.AsyncClient) -> None:
        nonlocal retries
        for body in queue:
            t0 = time.perf_counter()
            for attempt in range(10):
                try:
                    answer = await http.post(url + "/v1/alerts", content=body,
                                             headers={"content-type": "application/json"})
                except httpx.HTTPError:
                    statuses[0] += 1
                    await asyncio.sleep(0.2)
                    continue
                if answer.status_code != 503:
                    break
                retries += 1
                await asyncio.sleep(0.05 * (attempt + 1))
            latencies.append(time.perf_counter() - t0)
            statuses[answer.status_code] += 1
            data = answer.json()
            kind = ("duplicate_delivery" if data.get("duplicate_delivery")
                    else data.get("alerts", [{}])[0].get("status", "?"))
            answers[kind] += 1

    began = time.perf_counter()
    async with client(in_flight) as http:
        await asyncio.gather(*(sender(http) for _ in range(in_flight)))
    elapsed = time.perf_counter() - began
    return {"seconds": round(elapsed, 2), "deliveries_per_s": round(len(bodies) / elapsed, 1),
            "statuses": {str(k): v for k, v in statuses.items()}, "answers": dict(answers),
            "retries_503": retries, "latency_ms": summary(latencies)}


def run_breakdown(api: str, engine: Engine) -> dict[str, int]:
    """Prefect's respond-to-alert runs against the ledger: one per occurrence, none else."""
    runs: list[dict[str, Any]] = []
    while True:
        page = httpx.post(api + "/flow_runs/filter", timeout=120, json={
            "flows": {"name": {"any_": [FLOW_NAME]}},  # not the scheduled auditor's runs
            "limit": 200, "offset": len(runs)}).json()
        runs.extend(page)
        if len(page) < 200:
            break
    with Session(engine) as session:
        owned = set(session.exec(select(Alert.flow_run_id)).all())
    keys = Counter(r.get("idempotency_key") for r in runs)
    return {"runs": len(runs), "distinct_idempotency_keys": len(keys),
            "keys_with_more_than_one_run": sum(1 for n in keys.values() if n > 1),
            "runs_without_key": keys.get(None, 0),
            "runs_not_in_ledger": sum(1 for r in runs if r["id"] not in owned)}


def creation_rate(runs: list[dict[str, Any]]) -> float:
    """Runs created per second, from the first run's creation to the last one's."""
    stamps = sorted(datetime.fromisoformat(r["created"].replace("Z", "+00:00")) for r in runs)
    span = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
    return round((len(stamps) - 1) / span, 2) if span else 0.0


def read_runs(api: str, flow: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    while True:
        page = httpx.post(api + "/flow_runs/filter", timeout=120, json={
            "flows": {"name": {"any_": [flow]}}, "limit": 200, "offset": len(runs)}).json()
        runs.extend(page)
        if len(page) < 200:
            return runs


async def bare_client(api: str, count: int, in_flight: int, tag: str) -> dict[str, Any]:
    """The yardstick: a bare client creating ``count`` runs of a trivial deployment with
    ``in_flight`` requests at once (idempotency keys, as the dispatcher), on the same server."""
    async with httpx.AsyncClient(base_url=api, timeout=120,
                                 transport=httpx.AsyncHTTPTransport(retries=3)) as http:
        flow = (await http.post("/flows/", json={"name": "bare-storm"})).json()
        deployment = (await http.post("/deployments/", json={
            "name": "bare", "flow_id": flow["id"], "entrypoint": "bare.py:bare"})).json()
        todo = iter(range(count))
        started = time.perf_counter()

        async def sender() -> None:
            for i in todo:
                for attempt in range(10):
                    answer = await http.post(
                        f"/deployments/{deployment['id']}/create_flow_run",
                        json={"idempotency_key": f"{tag}-{i}", "tags": ["bare"]})
                    if answer.status_code < 300:
                        break
                    await asyncio.sleep(0.1 * 2**attempt)

        await asyncio.gather(*(sender() for _ in range(in_flight)))
        seconds = time.perf_counter() - started
    runs = [r for r in read_runs(api, "bare-storm") if (r.get("idempotency_key") or "")
            .startswith(f"{tag}-")]
    return {"runs": len(runs), "seconds": round(seconds, 1), "runs_per_s": creation_rate(runs)}


def pending(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(OutboxItem)
                                .where(col(OutboxItem.done_at).is_(None))).one())


def ledger_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        alerts = session.exec(select(func.count()).select_from(Alert)).one()
        repeats = session.exec(select(func.sum(Alert.repeat_count))).one()
        with_run = session.exec(select(func.count()).select_from(Alert)
                                .where(col(Alert.flow_run_id).is_not(None))).one()
        accepted = session.exec(select(func.count()).select_from(Delivery)
                                .where(Delivery.status == "accepted")).one()
    return {"occurrences": int(alerts), "sum_repeat_count": int(repeats or 0),
            "occurrences_with_run": int(with_run), "deliveries_stored": int(accepted)}


@contextlib.contextmanager
def maybe_pg(wanted: bool) -> Iterator[str | None]:
    if not wanted:
        yield None
        return
    with pg_database() as name:
        yield name


def run_storm(run: Bench, args: argparse.Namespace, prefect_db: str | None,
              ledger_db: str | None) -> dict[str, Any]:
    workdir = run.workdir
    ledger_url = PG_URL.format(db=ledger_db) if ledger_db else run.env["AXTRACE_DATABASE_URL"]
    run.env["AXTRACE_DATABASE_URL"] = ledger_url
    run.start_prefect(database=prefect_db)
    sites = [f"storm-{i:02d}" for i in range(args.sites)]
    apply_s = run.cli("sites", "apply", str(sites_yaml(workdir, sites)))
    yardstick = [asyncio.run(bare_client(run.prefect_api, args.unique // 2, 8, "before"))]
    url = run.start_intake(background=True)
    engine = make_engine(ledger_url)
    bodies = deliveries(args.deliveries, args.unique, sites, args.seed)
    began = time.perf_counter()
    sent = asyncio.run(burst(url, bodies, args.in_flight))
    while pending(engine) or ledger_counts(engine)["occurrences_with_run"] < args.unique:
        if time.perf_counter() - began > args.timeout:
            break
        time.sleep(0.5)
    drained = time.perf_counter() - began
    counts = ledger_counts(engine)
    breakdown = run_breakdown(run.prefect_api, engine)
    engine.dispose()
    runs = breakdown["runs"]
    storm_rate = creation_rate(read_runs(run.prefect_api, FLOW_NAME))
    yardstick.append(asyncio.run(bare_client(run.prefect_api, args.unique // 2, 8, "after")))
    bare_rate = statistics.mean(y["runs_per_s"] for y in yardstick)
    return {"sites_apply_s": round(apply_s, 1), "burst": sent,
            "burst_to_outbox_drained_s": round(drained, 1),
            "runs_per_s_while_draining": round(runs / drained, 2),
            "run_creation": {"storm_runs_per_s": storm_rate, "bare_client": yardstick,
                             "bare_runs_per_s_mean": round(bare_rate, 2),
                             "ratio": round(storm_rate / bare_rate, 3) if bare_rate else None},
            "ledger": counts, "prefect_flow_runs": runs, "prefect_runs_vs_ledger": breakdown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--unique", type=int, default=None, help="default: 10 %% of deliveries")
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=32, help="concurrent senders")
    parser.add_argument("--ledger", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--prefect", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--timeout", type=float, default=1800, help="give up draining after")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    args.unique = args.unique or args.deliveries // 10
    started = time.perf_counter()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="axtrace-bench-storm-") as tmp, \
            maybe_pg(args.prefect == "postgres") as prefect_db, \
            maybe_pg(args.ledger == "postgres") as ledger_db, bench(Path(tmp)) as run:
        out = run_storm(run, args, prefect_db, ledger_db)
        run.close()
    ok = (out["ledger"]["occurrences"] == args.unique == out["prefect_flow_runs"]
          == out["ledger"]["occurrences_with_run"])
    print(json.dumps({
        "benchmark": "storm", "machine": info,
        "config": {"deliveries": args.deliveries, "unique": args.unique, "sites": args.sites,
                   "in_flight": args.in_flight, "ledger": args.ledger, "prefect": args.prefect},
        **out, "reading": {"occurrences_and_runs_equal_unique": ok,
                              "run_creation_ge_0_8_of_bare":
                              (out["run_creation"]["ratio"] or 0) >= 0.8},
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
