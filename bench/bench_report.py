"""Benchmark of the managers' report: time to compute every figure over large ledgers.

Builds ledgers of 10k, 100k and 1M trace events over 100 sites (SQLite files in a temp folder,
schema by the real migrations; PostgreSQL too with ``--postgres`` when reachable), times
``build_report`` over the whole period (median of 3 runs after a warm-up; wall and CPU
seconds) and, as baselines measured in the same run, ``SELECT count(*) FROM trace_event`` and
a full read of the table (``sum(length(hash))``: no index holds it). Prints JSON: events,
seconds, growth per 10x events (10 = linear), ratios to the baselines, and the machine's load
average (the machine is shared: CPU seconds are the steadier figure).

    /work/venv/bin/python bench/bench_report.py [--sizes 10000,100000,1000000]
        [--postgres [URL]] [--recommended]

Target: 1M events in under 2 s, time growing no faster than linearly with events.
Ledgers here hold realistic stories (happy path, refusals, escalations, ignored, still open);
hashes are placeholders: the report never reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlmodel import Session

from axtrace.ledger.db import make_engine, upgrade
from axtrace.reports.figures import build_report
from axtrace.reports.model import Scope

START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 28
NOW = START + timedelta(days=DAYS + 1)
HASH = "0" * 64
STORIES: list[tuple[float, list[str]]] = [
    (0.55, ["received", "assigned", "notified", "acknowledged", "resolved", "closed"]),
    (0.10, ["received", "assigned", "notified", "refused", "acknowledged", "resolved",
            "closed"]),
    (0.12, ["received", "assigned", "notified", "escalated", "notified", "acknowledged",
            "resolved", "closed"]),
    (0.05, ["received", "assigned", "notified", "escalated", "notified", "ignored",
            "resolved", "closed"]),
    (0.08, ["received", "assigned", "notified", "acknowledged"]),
    (0.05, ["received", "assigned", "notified"]),
    (0.05, ["received", "assigned", "notified", "acknowledged", "closed"]),  # a skipped step
]
ALERT_COLS = ("id", "site", "key", "source", "severity", "title", "detector",
              "detector_version", "labels", "received_at", "status", "repeat_count", "level",
              "notified_level", "wait_seq", "ack_deadline", "resolve_deadline",
              "acknowledged_at", "resolved_at", "outcome", "closed_at", "workflow_version",
              "policy_version", "policy", "owner", "flow_run_id")
POLICY = json.dumps({
    "site": "site-000", "owning_team": "Line quality",
    "escalation_chain": [
        {"name": "Line lead", "responders": ["anna.keller", "ben.hofmann"],
         "acknowledge_within": 300.0},
        {"name": "Shift manager", "responders": ["clara.vogel"], "acknowledge_within": 600.0}],
    "resolve_within": 3600.0, "notification_block": None,
    "severity_overrides": {"critical": {"acknowledge_within": 120.0, "resolve_within": None}},
})
"""A policy as ``assign`` pins it on every alert (about 400 bytes)."""
EVENT_COLS = ("id", "alert_id", "seq", "step", "actor", "at", "detail", "prev_hash", "hash")


def stamp(moment: datetime | None) -> str | None:
    """A timestamp as the ledger stores it (naive UTC text on SQLite, ISO on PostgreSQL)."""
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def story_rows(alert_id: int, rng: random.Random) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One alert row and its trace rows, following one of ``STORIES``."""
    steps = rng.choices([s for _, s in STORIES], weights=[w for w, _ in STORIES])[0]
    site = f"site-{alert_id % 100:03d}"
    received = START + timedelta(seconds=rng.uniform(0, DAYS * 86400))
    at, level, late = received, 1, None
    times: dict[str, datetime] = {}
    events = []
    for seq, step in enumerate(steps, start=1):
        at += timedelta(seconds=rng.expovariate(1 / 300) if seq > 3 else 0.2)
        level += step == "escalated"
        detail: dict[str, Any] = {"level": level}
        if step == "acknowledged":
            late = rng.choice([None, None, None, None, 12.5])
            detail["late_by_s"] = late
        times[step] = at
        events.append((0, alert_id, seq, step, "bench", stamp(at),
                       json.dumps(detail), HASH, HASH))
    status = {"closed": "closed", "resolved": "resolved", "ignored": "ignored",
              "acknowledged": "acknowledged"}.get(steps[-1], "open")
    alert = (alert_id, site, f"vision-qa:line-{alert_id % 7}:{alert_id}", "native",
             rng.choice(["critical", "high", "low"]),
             f"Defect candidate on press line {alert_id % 7}",
             rng.choice(["vision-qa", "forecast"]), rng.choice(["1.0", "2.0"]),
             '{"line": "3", "camera": "cam-2"}',
             stamp(received), status, 1, level, level, 0,
             stamp(received + timedelta(minutes=5)) if status == "open" else None,
             stamp(received + timedelta(hours=1)), stamp(times.get("acknowledged")),
             stamp(times.get("resolved")),
             rng.choice(["fixed", "false_positive"]) if "resolved" in times else None,
             stamp(times.get("closed")), "0.1.0+abc", "p1", POLICY, "Line quality",
             str(uuid.UUID(int=rng.getrandbits(128))))
    return alert, events


def generate(events: int, seed: int = 7) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Alerts and trace rows as a live ledger holds them: ids in time order, so the steps of
    alerts open at the same time interleave in the trace table."""
    rng = random.Random(seed)
    stories: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]] = []
    made = 0
    while made < events:
        alert, trace = story_rows(len(stories) + 1, rng)
        trace = trace[: events - made]
        made += len(trace)
        stories.append((alert, trace))
    stories.sort(key=lambda story: story[0][9])  # received_at
    renumber = {story[0][0]: new for new, story in enumerate(stories, start=1)}
    alerts = [(renumber[a[0]], *a[1:]) for a, _ in stories]
    rows = sorted((row for _, trace in stories for row in trace), key=lambda row: row[5])
    trace_rows = [(i, renumber[row[1]], *row[2:]) for i, row in enumerate(rows, start=1)]
    return alerts, trace_rows


def fill_sqlite(engine: Engine, events: int) -> int:
    alerts, trace = generate(events)
    with engine.begin() as conn:
        conn.exec_driver_sql(_insert("alert", ALERT_COLS, "?"), alerts)
        conn.exec_driver_sql(_insert("trace_event", EVENT_COLS, "?"), trace)
    return len(alerts)


def fill_postgres(engine: Engine, events: int) -> int:
    count = 0
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")  # the naive stamps are UTC
        alerts, trace = generate(events)
        with cursor.copy(f"COPY alert ({', '.join(ALERT_COLS)}) FROM STDIN") as copy:
            for alert in alerts:
                copy.write_row(alert)
                count += 1
        with cursor.copy(f"COPY trace_event ({', '.join(EVENT_COLS)}) FROM STDIN") as copy:
            for row in trace:
                copy.write_row(row)
        raw.commit()
        cursor.execute("ANALYZE")  # PostgreSQL's autovacuum would do it shortly anyway
        raw.commit()
    finally:
        raw.close()
    return count


def _insert(table: str, cols: tuple[str, ...], mark: str) -> str:
    names, marks = ", ".join(cols), ", ".join([mark] * len(cols))
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608  (fixed names)


def timed(work: Callable[[], object], runs: int = 3) -> tuple[float, float]:
    """Median wall and CPU seconds of ``runs`` runs, after one warm-up run."""
    work()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return round(statistics.median(walls), 4), round(statistics.median(cpus), 4)


def measure(engine: Engine, events: int, alerts: int) -> dict[str, Any]:
    """The report over the whole ledger, and the two baselines, in the same run."""
    scope = Scope(since=START, until=NOW)

    def report() -> object:
        with Session(engine) as session:
            return build_report(session=session, scope=scope, now=NOW)

    def sql(statement: str) -> Callable[[], object]:
        def run() -> object:
            with engine.connect() as conn:
                return conn.execute(text(statement)).all()
        return run

    seconds, cpu = timed(report)
    count_s, _ = timed(sql("SELECT count(*) FROM trace_event"))
    scan_s, _ = timed(sql("SELECT sum(length(hash)) FROM trace_event"))
    return {"events": events, "alerts": alerts, "seconds": seconds, "cpu_seconds": cpu,
            "baseline_count_s": count_s, "baseline_scan_s": scan_s,
            "ratio_to_count": round(seconds / count_s, 1) if count_s else None,
            "ratio_to_scan": round(seconds / scan_s, 1) if scan_s else None}


def growth(results: list[dict[str, Any]]) -> None:
    """Time ratio per 10x events (10.0 = linear, less = better than linear)."""
    for smaller, larger in pairwise(results):
        factor = larger["events"] / smaller["events"]
        for key in ("seconds", "cpu_seconds"):
            larger[f"growth_per_10x_{key}"] = round(
                larger[key] / smaller[key] * 10 / factor, 2)


COVERING = "CREATE INDEX ix_trace_event_alert_seq_step ON trace_event (alert_id, seq, step)"
"""Recommended migration: the trace pass reads this index instead of the table's rows."""
MMAP = "PRAGMA mmap_size=268435456"
"""Recommended for ``_sqlite_pragmas``: pages read from memory, not with a syscall each."""


def measure_recommended(url: str, events: int, alerts: int) -> dict[str, Any]:
    """The same ledger with the covering index and memory-mapped reads."""
    engine = make_engine(url)
    event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute(MMAP))
    with engine.begin() as conn:
        conn.exec_driver_sql(COVERING)
    try:
        return measure(engine, events, alerts)
    finally:
        engine.dispose()


def run_sqlite(sizes: list[int], folder: Path, recommended: bool) -> list[dict[str, Any]]:
    results = []
    for events in sizes:
        url = f"sqlite:///{folder / f'ledger-{events}.db'}"
        upgrade(url)
        engine = make_engine(url)
        alerts = fill_sqlite(engine, events)
        results.append(measure(engine, events, alerts))
        engine.dispose()
        if recommended:
            results[-1]["with_recommended"] = measure_recommended(url, events, alerts)
    growth(results)
    return results


def run_postgres(sizes: list[int], url: str) -> list[dict[str, Any]] | str:
    admin = make_engine(url)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # optional: report why and go on
        return f"skipped: {type(exc).__name__}: {exc}"[:300]
    results = []
    try:
        for events in sizes:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            scoped = f"{url}?options=-csearch_path%3D{schema}"
            upgrade(scoped)
            engine = make_engine(scoped)
            alerts = fill_postgres(engine, events)
            results.append(measure(engine, events, alerts))
            engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()
    growth(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--postgres", nargs="?",
                        const="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--recommended", action="store_true",
                        help="Also time each SQLite ledger with the recommended covering index "
                             "and mmap pragma.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="axtrace-bench-") as folder:
        out: dict[str, Any] = {
            "sites": 100, "target_s": 2.0, "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "sqlite": run_sqlite(sizes, Path(folder), args.recommended)}
    if args.postgres:
        out["postgresql"] = run_postgres(sizes, args.postgres)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
