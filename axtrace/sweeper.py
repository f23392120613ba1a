"""The deadline sweeper: wakes runs whose acknowledge deadline has passed.

Prefect would fail an expired suspension without letting the flow act, so deadlines live in
the ledger and this loop resumes the waiting run with an empty answer; the flow sees the
deadline has passed and escalates. Deadlines that passed while nothing was running fire on
the first pass after a restart, and the flow records how late they fired.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from axtrace.dispatch import _sleep
from axtrace.ledger import repo
from axtrace.ledger.models import utcnow
from axtrace.ledger.session import ledger_session

logger = logging.getLogger("axtrace.sweeper")


async def sweep_once(client: Any) -> int:
    """Resume every run that waits for an acknowledgement past its deadline; count them."""
    from prefect.client.schemas.responses import SetStateStatus

    with ledger_session() as session:
        overdue = [(a.id, a.flow_run_id, a.wait_seq) for a in
                   repo.overdue_acknowledgements(session=session, now=utcnow())]
    woken = 0
    for alert_id, run_id, wait_seq in overdue:
        run = await client.read_flow_run(run_id)
        state = run.state
        expected = f"acknowledge-{wait_seq}"
        if state is None or not state.is_paused() or state.state_details.pause_key != expected:
            continue  # running, scheduled or between waits: the next pass looks again
        result = await client.resume_flow_run(run_id, run_input={})
        if result.status == SetStateStatus.ACCEPT:
            woken += 1
            logger.info("woke run %s of alert %s: acknowledge deadline passed", run_id, alert_id)
    return woken


async def run_sweeper(stop: asyncio.Event, *, interval: float) -> None:
    from prefect import get_client

    while not stop.is_set():
        try:
            async with get_client() as client:
                while not stop.is_set():
                    await sweep_once(client)
                    await _sleep(stop, interval)
        except Exception:
            logger.exception("sweep failed; retrying")
            await _sleep(stop, interval)
