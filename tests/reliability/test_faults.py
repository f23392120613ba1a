"""Faults survived, with real processes: nothing accepted is lost, nothing runs twice."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select

from axtrace.ledger.db import engine_for
from axtrace.ledger.models import Alert, OutboxItem
from axtrace.testing import Stack, wait_until
from tests.reliability.conftest import PREFECT_LOGIN

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def ledger(stack: Stack) -> Session:
    return Session(engine_for(stack.env["AXTRACE_DATABASE_URL"]))


def prefect_runs(stack: Stack) -> list[dict[str, Any]]:
    """Every respond-to-alert run of the stack's Prefect server (over its REST API); the
    scheduled housekeeping flows' runs are not alerts' runs."""
    runs: list[dict[str, Any]] = []
    only = {"flows": {"name": {"any_": ["respond-to-alert"]}}}
    while True:
        page = httpx.post(stack.env["PREFECT_API_URL"] + "/flow_runs/filter",
                          json={"limit": 200, "offset": len(runs), **only}, timeout=30,
                          auth=PREFECT_LOGIN).json()
        runs.extend(page)
        if len(page) < 200:
            return runs


def drained(stack: Stack) -> bool:
    with ledger(stack) as session:
        pending = session.exec(select(func.count()).select_from(OutboxItem)
                               .where(col(OutboxItem.done_at).is_(None))).one()
    return int(pending) == 0


def one_run_per_alert(stack: Stack) -> tuple[int, int]:
    """(alerts in the ledger, runs in Prefect), after checking no alert has two runs."""
    wait_until(lambda: drained(stack), timeout=600, what="the outbox drained")
    with ledger(stack) as session:
        alerts = session.exec(select(Alert)).all()
    runs = prefect_runs(stack)
    by_key: dict[str, int] = {}
    for run in runs:
        key = run.get("idempotency_key") or ""
        by_key[key] = by_key.get(key, 0) + 1
    assert all(count == 1 for count in by_key.values()), "an alert got two runs"
    assert {a.flow_run_id for a in alerts} == {r["id"] for r in runs}
    return len(alerts), len(runs)


def post(stack: Stack, key: str) -> int | None:
    body = json.dumps({"site": "omega", "key": key, "title": f"Stream {key}"})
    try:
        answer = httpx.post(f"{stack.http.base_url}/v1/alerts", content=body, timeout=30,
                            headers={"content-type": "application/json"})
    except httpx.HTTPError:
        return None
    return answer.status_code


def test_intake_killed_mid_stream_loses_no_accepted_delivery_and_runs_each_once(
    bare: Stack,
) -> None:
    count, kill_at = 1000, 300
    accepted: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def send(i: int) -> None:
        if i == kill_at and not killed.is_set():
            killed.set()
            assert bare.intake_proc is not None
            os.kill(bare.intake_proc.pid, signal.SIGKILL)
            bare.intake_proc.wait()
            bare.start_intake()
        key = f"stream-{i}"
        for _attempt in range(3):
            status = post(bare, key)
            if status is not None and status < 300:
                with lock:
                    accepted.append(key)
                return
            time.sleep(0.5)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(count)))

    assert killed.is_set()
    with ledger(bare) as session:
        stored = set(session.exec(select(Alert.key).where(col(Alert.key).in_(accepted))).all())
    assert stored == set(accepted), "every 2xx'd delivery is in the ledger"
    alerts, runs = one_run_per_alert(bare)
    assert alerts == runs >= len(accepted)


def test_every_axtrace_process_works_with_prefects_basic_auth_on(bare: Stack) -> None:
    api = bare.env["PREFECT_API_URL"]
    assert httpx.post(f"{api}/flow_runs/filter", json={}, timeout=30).status_code == 401
    assert post(bare, "with-auth-on") == 202
    alerts, runs = one_run_per_alert(bare)  # the intake's dispatcher logged in to create it
    assert alerts == runs >= 1


def test_prefect_away_intake_keeps_accepting_and_runs_start_once_it_is_back(
    bare: Stack,
) -> None:
    assert post(bare, "warm-the-site-cache") == 202
    before_alerts, _ = one_run_per_alert(bare)
    bare.stop_server()
    statuses = []
    try:
        for i in range(60):  # a steady stream while Prefect is away for a minute
            started = time.monotonic()
            statuses.append(post(bare, f"while-away-{i}"))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    finally:
        bare.start_server()
    assert statuses == [202] * 60, "intake keeps accepting durably while Prefect is away"
    alerts, runs = one_run_per_alert(bare)
    assert alerts == runs == before_alerts + 60


def test_a_locked_ledger_gets_503_and_nothing_accepted_is_missing_after_recovery(
    bare: Stack,
) -> None:
    import sqlite3

    path = bare.env["AXTRACE_DATABASE_URL"].removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        statuses = {f"locked-{i}": post(bare, f"locked-{i}") for i in range(3)}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert set(statuses.values()) == {503}, "a transient fault is 503, never 4xx or 500"
    with ledger(bare) as session:
        assert not session.exec(select(Alert).where(col(Alert.key).in_(statuses))).all()
    assert all(post(bare, key) == 202 for key in statuses), "the sender's retry is accepted"
    with ledger(bare) as session:
        stored = session.exec(select(Alert.key).where(col(Alert.key).in_(statuses))).all()
    assert sorted(stored) == sorted(statuses)
