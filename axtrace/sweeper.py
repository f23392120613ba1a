"""The deadline sweeper: wakes runs whose acknowledge or resolve deadline has passed, whose
reminder is due, or whose maintenance window has ended.

Prefect would fail an expired suspension without letting the flow act, so deadlines live in
the ledger and this loop resumes the waiting run with an empty answer; the flow sees what is
due (:func:`axtrace.workflow.deadline_step`) and escalates, marks the alert ignored or overdue,
reminds, or releases a suppressed alert. Deadlines that passed while nothing was running
fire on the first pass after a restart, and the flow records how late they fired.

Each pass also runs the detectors' dead-man switch (:func:`axtrace.heartbeats.check_once`):
it lives here because it is a deadline too, kept in the ledger and checked as often.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from axtrace.ledger import repo
from axtrace.ledger.models import utcnow
from axtrace.ledger.session import ledger_session
from axtrace.supervise import repeat, supervise

logger = logging.getLogger("axtrace.sweeper")


async def sweep_once(client: Any) -> int:
    """Resume every run whose wait is due (a deadline passed, a reminder, a window's end);
    count them."""
    from prefect.client.schemas.responses import SetStateStatus

    from axtrace.workflow import decide, pause_key

    with ledger_session() as session:
        due = [(a.id, a.flow_run_id, pause_key(a, decide(a))) for a in
               repo.due_waits(session=session, now=utcnow())]
    woken = 0
    for alert_id, run_id, expected in due:
        run = await client.read_flow_run(run_id)
        state = run.state
        if state is None or not state.is_paused() or state.state_details.pause_key != expected:
            continue  # running, scheduled or between waits: the next pass looks again
        result = await client.resume_flow_run(run_id, run_input={})
        if result.status == SetStateStatus.ACCEPT:
            woken += 1
            logger.info("woke run %s of alert %s (%s): due", run_id, alert_id, expected)
    return woken


async def run_sweeper(stop: asyncio.Event, *, interval: float) -> None:
    from prefect import get_client

    from axtrace.heartbeats import Detectors, check_once

    detectors = Detectors()

    async def connected() -> None:
        async with get_client() as client:
            async def sweep_and_check() -> None:
                await sweep_once(client)
                await check_once(detectors)

            await repeat(stop, sweep_and_check, interval=interval)

    await supervise("sweeper", stop, connected, interval=interval)
