"""The dispatcher keeps its rows flowing: one slow Prefect call holds back no other alert.

The rows are real outbox rows in a real ledger, claimed by the real lease; only the Prefect
call is replaced by a handler whose duration the test chooses (a slow call is what a busy
SQLite Prefect server gives, and cannot be ordered on demand)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlmodel import Session

from axtrace import dispatch
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import Alert, AlertCreate, OutboxItem


def run_alone(coro: Any) -> Any:
    """``asyncio.run`` in a thread of its own: an earlier test may leave a loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def alerts(ledger: str, count: int) -> None:
    with Session(engine_for(ledger)) as session:
        for number in range(count):
            repo.create_alert(session=session, actor="t", alert=AlertCreate(
                site="berlin-plant", key=f"k{number}", title=f"Alert {number}"))
        session.commit()


def relay(*, slow: set[int], slow_seconds: float, concurrency: int,
          until: int) -> tuple[dict[int, float], float]:
    """Pump the outbox until ``until`` alerts are handled; when each was handled (seconds
    from the start), and how long the pump took to stop once asked."""

    async def scenario() -> tuple[dict[int, float], float]:
        stop, due = asyncio.Event(), asyncio.Event()
        started = time.monotonic()
        handled: dict[int, float] = {}

        async def handle(item: OutboxItem, alert: Alert) -> bool:
            await asyncio.sleep(slow_seconds if alert.id in slow else 0.01)
            handled[alert.id or 0] = time.monotonic() - started
            if len(handled) >= until:
                stop.set()
            return True

        task = asyncio.create_task(dispatch.pump(handle, stop, due, interval=30.0,
                                                 concurrency=concurrency))
        await asyncio.wait_for(stop.wait(), timeout=60)
        asked = time.monotonic()
        await task
        return handled, time.monotonic() - asked

    result: tuple[dict[int, float], float] = run_alone(scenario())
    return result


def test_a_slow_call_holds_back_no_other_alert(ledger: str) -> None:
    alerts(ledger, 40)
    handled, _ = relay(slow={1}, slow_seconds=5.0, concurrency=8, until=39)
    others = [at for alert_id, at in handled.items() if alert_id != 1]
    assert len(others) == 39
    assert max(others) < 2.5, "39 quick rows flow past the slow one (a batch waited 5 s)"


def test_no_more_than_the_concurrency_is_in_flight_and_each_row_is_handled_once(
    ledger: str,
) -> None:
    alerts(ledger, 30)
    in_flight, most, seen = 0, 0, []

    async def scenario() -> None:
        nonlocal in_flight, most
        stop, due = asyncio.Event(), asyncio.Event()

        async def handle(item: OutboxItem, alert: Alert) -> bool:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            seen.append(alert.id)
            await asyncio.sleep(0.05)
            in_flight -= 1
            await asyncio.to_thread(dispatch._finish, item.id or 0, alert.id or 0, done=True,
                                    run_id=f"run-{alert.id}")
            if len(seen) == 30:
                stop.set()
            return True

        await asyncio.wait_for(dispatch.pump(handle, stop, due, interval=30.0, concurrency=4),
                               timeout=60)

    run_alone(scenario())
    assert most == 4
    assert sorted(seen) == list(range(1, 31)), "each row once (the lease keeps it out)"
    with Session(engine_for(ledger)) as session:
        assert all(repo.get_alert(session=session, alert_id=n).flow_run_id == f"run-{n}"
                   for n in range(1, 31))


def test_stopping_waits_for_the_rows_in_flight(ledger: str) -> None:
    alerts(ledger, 3)
    handled, stopping = relay(slow={3}, slow_seconds=1.0, concurrency=8, until=2)
    assert set(handled) == {1, 2, 3}, "the row in flight finished before the pump returned"
    assert stopping < 5.0


def test_a_busy_server_is_tried_again_within_seconds_an_absent_one_backs_off_to_a_minute(
) -> None:
    assert [dispatch.backoff(n, busy=True) for n in range(1, 8)] == [1, 2, 4, 5, 5, 5, 5]
    assert [dispatch.backoff(n, busy=False) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_503_from_prefect_counts_as_busy() -> None:
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    request = httpx.Request("POST", "http://prefect/api/deployments/x/create_flow_run")
    busy = PrefectHTTPStatusError.from_httpx_error(httpx.HTTPStatusError(
        "busy", request=request, response=httpx.Response(503, request=request)))
    away = httpx.ConnectError("refused", request=request)
    assert dispatch._busy(busy)
    assert not dispatch._busy(away)
