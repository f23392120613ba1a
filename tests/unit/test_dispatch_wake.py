"""The dispatcher wakes at once when the intake has committed a delivery, not at its next poll."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from axtrace import dispatch
from axtrace.supervise import sleep_until


def run_alone(coro: Any) -> Any:
    """``asyncio.run`` in a thread of its own: an earlier test may leave a loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_nudge_from_another_thread_ends_the_dispatchers_wait_at_once() -> None:
    async def scenario() -> float:
        stop = asyncio.Event()
        due = dispatch._due.setdefault(asyncio.get_running_loop(), asyncio.Event())
        started = time.monotonic()
        threading.Timer(0.2, dispatch.nudge).start()  # the intake's thread, after its commit
        await sleep_until(stop, 30.0, also=due)
        return time.monotonic() - started

    assert run_alone(scenario()) < 5.0, "woken by the nudge, not by the 30 s poll"


def test_without_a_nudge_the_poll_interval_still_bounds_the_wait() -> None:
    async def scenario() -> float:
        stop, due = asyncio.Event(), asyncio.Event()
        started = time.monotonic()
        await sleep_until(stop, 0.3, also=due)
        return time.monotonic() - started

    assert 0.25 <= run_alone(scenario()) < 5.0


def test_a_nudge_skips_closed_loops() -> None:
    loop = asyncio.new_event_loop()
    dispatch._due[loop] = asyncio.Event()
    loop.close()
    dispatch.nudge()  # must not raise for a loop that is gone
    assert loop not in dispatch._due
