"""The supervisor loop of the dispatcher and the sweeper, on a real event loop: a failing
session is logged and started again after the interval, ``stop`` ends everything at once, and
a wake event starts the next pass without waiting out the interval."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from axtrace.supervise import repeat, sleep_until, supervise


def run_alone(coro: Any) -> Any:
    """``asyncio.run`` in a thread of its own: an earlier test may leave a loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_session_that_raises_is_logged_and_started_again_after_the_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> list[float]:
        stop, started, calls = asyncio.Event(), time.monotonic(), []

        async def session() -> None:
            calls.append(time.monotonic() - started)
            if len(calls) == 3:
                stop.set()
                return
            raise ConnectionError("Prefect away")

        await asyncio.wait_for(supervise("sweeper", stop, session, interval=0.3), timeout=10)
        return calls

    with caplog.at_level(logging.ERROR, logger="axtrace.sweeper"):
        calls = run_alone(scenario())
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.25, "backed off"
    assert calls[2] - calls[1] >= 0.25, "backed off"
    failures = [r for r in caplog.records if r.name == "axtrace.sweeper"]
    assert [r.getMessage() for r in failures] == ["sweeper failed; retrying in 0.3 s"] * 2
    assert all(r.exc_info and isinstance(r.exc_info[1], ConnectionError) for r in failures)


def test_stop_ends_the_supervisor_promptly_while_it_backs_off() -> None:
    async def scenario() -> float:
        stop = asyncio.Event()

        async def session() -> None:
            raise ConnectionError("Prefect away")

        loop = asyncio.get_running_loop()
        loop.call_later(0.2, stop.set)
        started = time.monotonic()
        await asyncio.wait_for(supervise("dispatch", stop, session, interval=30.0), timeout=10)
        return time.monotonic() - started

    assert run_alone(scenario()) < 5.0, "ended by stop, not after the 30 s interval"


def test_stop_ends_a_repeat_promptly_while_it_waits() -> None:
    async def scenario() -> tuple[int, float]:
        stop, passes = asyncio.Event(), []

        async def step() -> None:
            passes.append(1)

        asyncio.get_running_loop().call_later(0.2, stop.set)
        started = time.monotonic()
        await asyncio.wait_for(repeat(stop, step, interval=30.0), timeout=10)
        return len(passes), time.monotonic() - started

    passes, took = run_alone(scenario())
    assert passes == 1
    assert took < 5.0


def test_a_wake_event_starts_the_next_pass_without_waiting_out_the_interval() -> None:
    async def scenario() -> list[float]:
        stop, wake, started, passes = asyncio.Event(), asyncio.Event(), time.monotonic(), []

        async def step() -> None:
            passes.append(time.monotonic() - started)
            if len(passes) == 2:
                stop.set()

        asyncio.get_running_loop().call_later(0.2, wake.set)
        await asyncio.wait_for(repeat(stop, step, interval=30.0, wake=wake), timeout=10)
        return passes

    passes = run_alone(scenario())
    assert len(passes) == 2
    assert 0.15 <= passes[1] < 5.0, "woken, not the 30 s poll"


def test_a_step_that_reports_more_due_runs_again_at_once_and_a_woken_one_clears_the_wake(
        ) -> None:
    async def scenario() -> tuple[list[bool], float]:
        stop, wake, seen = asyncio.Event(), asyncio.Event(), []
        wake.set()  # set before the first pass: cleared by it, so it wakes no later pass

        async def step() -> bool:
            seen.append(wake.is_set())
            return len(seen) < 3  # two passes with more due, then a wait of the interval

        asyncio.get_running_loop().call_later(0.5, stop.set)
        started = time.monotonic()
        await asyncio.wait_for(repeat(stop, step, interval=30.0, wake=wake), timeout=10)
        return seen, time.monotonic() - started

    seen, took = run_alone(scenario())
    assert seen == [False, False, False], "three passes, the wake cleared before each"
    assert took < 5.0


def test_sleep_until_waits_the_seconds_when_nothing_is_set() -> None:
    async def scenario() -> float:
        started = time.monotonic()
        await sleep_until(asyncio.Event(), 0.3, also=asyncio.Event())
        return time.monotonic() - started

    assert 0.25 <= run_alone(scenario()) < 5.0
