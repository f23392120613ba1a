"""Scaled out on Prefect's distributed setup: a Prefect server on PostgreSQL with Redis
messaging, an ``axtrace-process`` work pool with two workers (each run forked from a worker's
warm template), two intake replicas (each with dispatcher and sweeper) and the ledger on
PostgreSQL. Every occurrence gets exactly one run, on either worker;
the ledger and Prefect's run history agree; a storm at one site does not starve another.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from axtrace.ledger.db import make_engine
from axtrace.ledger.models import Alert, OutboxItem, TraceEvent
from axtrace.testing import free_port, wait_until
from tests.scale.cluster import POOL, Cluster, children, cluster_env, write_sites
from tests.scale.services import (
    postgres_reachable,
    redis_database,
    redis_reachable,
    require,
    temp_database,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]

TEN = [f"site-{i:02d}" for i in range(10)]
SITES = {**dict.fromkeys(TEN, 600.0), "storm": 600.0, "quiet": 600.0, "escalating": 3.0,
         "warm": 600.0}
WORKERS = ("worker-a", "worker-b")
WORKER_LIMIT = 2  # runs each worker executes at once: 4 in all, so a storm can fill them
STORM_LIMIT = 2  # Prefect deployment concurrency limit of the storm site
FIRST_WAIT = ["received", "assigned", "notified"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require(postgres_reachable(), redis_reachable())
    workdir = tmp_path_factory.mktemp("scale")
    with temp_database() as prefect_db, temp_database() as ledger_db, \
            redis_database() as redis_db:
        env = cluster_env(workdir, prefect_port=free_port(), prefect_db=prefect_db,
                          ledger_db=ledger_db, redis_db=redis_db)
        running = Cluster(workdir, env)
        try:
            running.start_server()
            running.set_up(write_sites(workdir, SITES))
            for name in WORKERS:
                running.start_worker(name, limit=WORKER_LIMIT)
            running.start_intake()
            running.start_intake()
            yield running
        finally:
            running.close()


@pytest.fixture(scope="module")
def ledger(cluster: Cluster) -> Iterator[Engine]:
    engine = make_engine(cluster.env["AXTRACE_DATABASE_URL"])
    try:
        yield engine
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- helpers


def post(port: int, body: bytes) -> dict[str, Any]:
    """Deliver one native alert body; a 503 (a racing replica won) is sent again, as senders do."""
    for _attempt in range(5):
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/alerts", content=body, timeout=60,
                            headers={"content-type": "application/json"})
        if answer.status_code != 503:
            assert answer.status_code < 300, answer.text
            result: dict[str, Any] = answer.json()
            return result
        time.sleep(0.2)
    raise AssertionError(f"still 503 after 5 tries: {answer.text}")


def alert_body(site: str, key: str, title: str = "Defect") -> bytes:
    return json.dumps({"site": site, "key": key, "title": f"{title} {key}"}).encode()


def alerts_at(engine: Engine, sites: list[str]) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).where(col(Alert.site).in_(sites))
                                 .order_by(col(Alert.id))).all())


def steps_of(engine: Engine, alert_ids: list[int]) -> dict[int, list[TraceEvent]]:
    with Session(engine) as session:
        rows = session.exec(select(TraceEvent).where(col(TraceEvent.alert_id).in_(alert_ids))
                            .order_by(col(TraceEvent.alert_id), col(TraceEvent.seq))).all()
    found: dict[int, list[TraceEvent]] = {i: [] for i in alert_ids}
    for row in rows:
        found[row.alert_id].append(row)
    return found


def wait_notified(engine: Engine, sites: list[str], count: int, *, level: int = 1,
                  timeout: float = 150) -> list[Alert]:
    """Wait until ``count`` occurrences at ``sites`` have notified ``level``."""
    def probe() -> list[Alert] | None:
        alerts = alerts_at(engine, sites)
        done = [a for a in alerts if a.notified_level >= level]
        return alerts if len(alerts) == count and len(done) == count else None

    result: list[Alert] = wait_until(probe, timeout=timeout, interval=1,
                                     what=f"{count} alerts notified at level {level}")
    return result


def runs_of(cluster: Cluster, sites: list[str]) -> list[dict[str, Any]]:
    deployments = cluster.rest("POST", "/deployments/filter", {
        "deployments": {"name": {"any_": sites}}, "limit": 200})
    return cluster.flow_runs(deployment_id={"any_": [d["id"] for d in deployments]})


def executions(cluster: Cluster, run_id: str) -> int:
    """How often the run entered Running (Prefect's run_count skips resumed executions)."""
    return sum(1 for state in cluster.states(run_id) if state["type"] == "RUNNING")


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals open at the same moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, change in edges:
        open_now += change
        peak = max(peak, open_now)
    return peak


# --------------------------------------------------------------------------- tests


def test_alerts_through_two_intakes_run_once_each_on_either_worker_and_ledger_agrees(
    cluster: Cluster, ledger: Engine,
) -> None:
    first, second = list(cluster.intakes)
    expected_repeats: Counter[str] = Counter()
    for i, site in enumerate(TEN):  # one occurrence per site, alternating between replicas
        post((first, second)[i % 2], alert_body(site, "k0"))
        expected_repeats[f"{site}/k0"] += 1
    for i, site in enumerate(TEN):
        # the same occurrence again through the other replica: counted, no new run
        repeat = post((second, first)[i % 2], alert_body(site, "k0", "Again"))
        assert repeat["alerts"][0]["status"] == "repeat"
        expected_repeats[f"{site}/k0"] += 1
        # the first delivery again, byte for byte, through the other replica: the first answer
        again = post((second, first)[i % 2], alert_body(site, "k0"))
        assert again.get("duplicate_delivery") is True
    racing = TEN[:2]  # a new occurrence sent to both replicas at the same instant
    start = threading.Barrier(2 * len(racing))

    def race(site: str, port: int) -> None:
        start.wait()  # the titles differ, so neither is a repeat of the other's delivery
        post(port, alert_body(site, "race", f"Seen by {port}"))

    threads = [threading.Thread(target=race, args=(site, port))
               for site in racing for port in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for site in racing:
        expected_repeats[f"{site}/race"] += 2

    unique = len(expected_repeats)
    alerts = wait_notified(ledger, TEN, unique)

    # the ledger: one occurrence per identity, each at its first wait, duplicates counted
    assert {f"{a.site}/{a.key}": a.repeat_count for a in alerts} == dict(expected_repeats)
    traces = steps_of(ledger, [a.id or 0 for a in alerts])
    assert all([e.step for e in t] == FIRST_WAIT for t in traces.values()), traces
    assert all(a.level == 1 and a.status == "open" for a in alerts)
    with Session(ledger) as session:
        outbox = session.exec(select(OutboxItem).where(
            col(OutboxItem.alert_id).in_([a.id for a in alerts]))).all()
    assert len(outbox) == unique
    assert all(o.done_at is not None for o in outbox)

    # Prefect: exactly one run per occurrence, executed once, by one of the two workers
    runs = runs_of(cluster, TEN)
    assert len(runs) == unique
    by_id = {r["id"]: r for r in runs}
    assert set(by_id) == {a.flow_run_id for a in alerts}
    for alert in alerts:
        run = by_id[alert.flow_run_id]
        assert run["idempotency_key"] == f"{alert.site}:{alert.id}"
        assert run["parameters"] == {"site": alert.site, "alert_id": alert.id}
        assert run["name"] == f"{alert.site}/{alert.id}"
        assert run["work_pool_name"] == POOL
        assert run["state_name"] == "Suspended"
        assert run["state"]["state_details"]["pause_key"] == "acknowledge-0"
        assert executions(cluster, run["id"]) == 1, f"alert {alert.id}'s run executed twice"
    workers = Counter(r["labels"].get("prefect.worker.name") for r in runs)
    assert set(workers) == set(WORKERS), f"runs per worker: {dict(workers)}"

    # Prefect's event store (fed through Redis) has each alert's steps exactly once
    wanted = {f"axtrace.alert.{a.id}" for a in alerts}

    def notified_events() -> Counter[str] | None:
        seen = Counter(e["resource"]["prefect.resource.id"]
                       for e in cluster.events("axtrace.alert.notified"))
        mine = Counter({k: v for k, v in seen.items() if k in wanted})
        return mine if len(mine) == unique else None

    events = wait_until(notified_events, timeout=60, interval=1, what="notified events")
    assert set(events.values()) == {1}


def test_two_sweepers_escalate_each_overdue_alert_once_and_a_worker_resumes_it(
    cluster: Cluster, ledger: Engine,
) -> None:
    ports = list(cluster.intakes)
    for n in range(2):
        post(ports[n % 2], alert_body("escalating", f"late-{n}"))

    alerts = wait_notified(ledger, ["escalating"], 2, level=2, timeout=120)

    traces = steps_of(ledger, [a.id or 0 for a in alerts])
    for alert in alerts:
        steps = [e.step for e in traces[alert.id or 0]]
        assert steps == [*FIRST_WAIT, "escalated", "notified"], steps
        assert alert.level == 2

    def resumed() -> list[dict[str, Any]] | None:
        runs = runs_of(cluster, ["escalating"])
        return runs if all(r["state_name"] == "Suspended"
                           and r["state"]["state_details"]["pause_key"] == "acknowledge-1"
                           for r in runs) else None

    runs = wait_until(resumed, timeout=60, what="every escalated run waiting at level 2")
    assert {r["id"] for r in runs} == {a.flow_run_id for a in alerts}
    for run in runs:
        assert executions(cluster, run["id"]) == 2, "once to the first wait, once after the wake"
        assert run["labels"].get("prefect.worker.name") in WORKERS


def test_a_storm_at_one_site_does_not_starve_another(cluster: Cluster, ledger: Engine) -> None:
    cluster.limit_site("storm", STORM_LIMIT)
    storm_count = 6  # more than the two workers run at once
    first, second = list(cluster.intakes)
    for n in range(storm_count):
        post((first, second)[n % 2], alert_body("storm", f"burst-{n}"))
    post(second, alert_body("quiet", "lone"))

    alerts = wait_notified(ledger, ["storm", "quiet"], storm_count + 1, timeout=180)

    traces = steps_of(ledger, [a.id or 0 for a in alerts])
    notified = {a.site + "/" + a.key: next(e.at for e in traces[a.id or 0]
                                          if e.step == "notified") for a in alerts}
    quiet_at = notified.pop("quiet/lone")
    storm_times = sorted(notified.values())
    later = sum(1 for at in storm_times if at > quiet_at)
    # Posted last, it must not queue behind the storm's held-back runs. (Warm executions end
    # so fast that most of the storm may be notified before the quiet alert is even posted.)
    assert later >= 1, (
        f"the quiet site's alert was notified after all {storm_count} storm alerts: "
        "the storm filled the workers")

    storm_runs = runs_of(cluster, ["storm"])
    assert len(storm_runs) == storm_count
    histories = {r["id"]: cluster.states(r["id"]) for r in storm_runs}
    waited = [rid for rid, states in histories.items()
              if any(s["name"] == "AwaitingConcurrencySlot" for s in states)]
    assert waited, "Prefect never held a storm run back for its deployment's limit"
    running = []
    for states in histories.values():
        began = next(stamp(s["timestamp"]) for s in states if s["type"] == "RUNNING")
        ended = next(stamp(s["timestamp"]) for s in states if s["type"] == "PAUSED")
        running.append((began, ended))
    assert most_at_once(running) <= STORM_LIMIT


def test_a_run_on_the_axtrace_process_pool_executes_in_a_fork_of_its_workers_template(
    cluster: Cluster, ledger: Engine,
) -> None:
    templates: dict[str, int] = wait_until(
        lambda: (found := cluster.templates()).keys() == set(WORKERS) and found,
        timeout=120, what="a warm template (forkserver) under each worker")
    forked: dict[int, int] = {}  # pid -> template pid, of every child a template forked
    watching = threading.Event()
    watching.set()

    def watch() -> None:  # an execution lives for seconds; a look every 20 ms sees it
        while watching.is_set():
            for template in templates.values():
                forked.update(dict.fromkeys(children(template), template))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        post(next(iter(cluster.intakes)), alert_body("warm", "w0"))
        (alert,) = wait_notified(ledger, ["warm"], 1)
        run = wait_until(lambda: next((r for r in runs_of(cluster, ["warm"])
                                       if r["state_name"] == "Suspended"), None),
                         timeout=60, what="the run suspended at its first wait")
    finally:
        watching.clear()
        watcher.join(timeout=10)

    assert run["id"] == alert.flow_run_id
    pid = int(run["infrastructure_pid"])
    worker = run["labels"]["prefect.worker.name"]
    assert forked.get(pid) == templates[worker], (
        f"the run's process {pid} was not forked by {worker}'s template {templates[worker]} "
        f"(forked meanwhile: {forked})")
    assert executions(cluster, run["id"]) == 1


def test_sites_apply_with_a_work_pool_targets_the_pool_and_the_project_flow(
    cluster: Cluster,
) -> None:
    # workers run flows/respond.py from the deployment's path: the sites file's folder
    deployment = cluster.rest("GET", "/deployments/name/respond-to-alert/site-00")
    assert Path(deployment["path"]) == cluster.workdir
    assert deployment["work_pool_name"] == POOL
    assert deployment["entrypoint"] == "flows/respond.py:respond_to_alert"
