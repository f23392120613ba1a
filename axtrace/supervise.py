"""The one supervisor loop of AxTrace's background workers (the dispatcher, the sweeper).

:func:`supervise` keeps a worker's session (open a Prefect client, work until ``stop``) alive:
when it fails, the failure is logged and the session starts again after ``interval`` seconds.
:func:`repeat` is the work inside a session: one pass, then a wait that ``stop`` ends and a
``wake`` event cuts short. :func:`sleep_until` is that wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

Session = Callable[[], Awaitable[None]]
Step = Callable[[], Awaitable[bool | None]]
"""One pass; True when more is due at once (the next pass starts without waiting)."""


async def sleep_until(stop: asyncio.Event, seconds: float,
                      also: asyncio.Event | None = None) -> None:
    """Wait ``seconds``, or less when ``stop`` (or ``also``) is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in (stop, also) if e is not None]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


async def repeat(stop: asyncio.Event, step: Step, *, interval: float,
                 wake: asyncio.Event | None = None) -> None:
    """Run ``step`` every ``interval`` seconds until ``stop`` is set; ``wake`` starts the next
    pass at once (it is cleared before each pass), and so does a step that returns True."""
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        if await step():
            continue
        await sleep_until(stop, interval, also=wake)


async def supervise(name: str, stop: asyncio.Event, session: Session, *,
                    interval: float) -> None:
    """Run ``session`` until ``stop`` is set: when it raises, log it on the ``axtrace.<name>``
    logger and start it again after ``interval`` seconds (at once ended by ``stop``)."""
    logger = logging.getLogger(f"axtrace.{name}")
    while not stop.is_set():
        try:
            await session()
        except Exception:
            logger.exception("%s failed; retrying in %g s", name, interval)
            await sleep_until(stop, interval)
