"""The deadline auditor repairs a dead run, against the real stack."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from axtrace.auditor import audit_once
from axtrace.testing import Stack, wait_until
from tests.integration.test_respond import waiting

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def waiting_run(stack: Stack, alert_id: int) -> dict[str, Any]:
    """The alert once its run is suspended waiting for the acknowledgement (cancelling it
    earlier, while it still runs, may end it Failed rather than Cancelled)."""
    return waiting(stack, alert_id, "acknowledge")


def test_a_run_that_died_while_waiting_is_dispatched_again_and_the_repair_recorded(
    stack: Stack,
) -> None:
    from prefect import get_client
    from prefect.states import Cancelled

    alert_id = stack.raise_alert("alpha", "Run that will die")
    dead_run = waiting_run(stack, alert_id)["flow_run_id"]
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(dead_run, Cancelled(), force=True)

    async def audit() -> dict[str, int]:
        async with get_client() as client:
            return await audit_once(client)

    counts = asyncio.run(audit())
    assert counts["redispatched"] >= 1
    wait_until(lambda: stack.alert(alert_id)["flow_run_id"] not in (None, dead_run),
               timeout=60, what="a new run")
    alert = waiting(stack, alert_id, "acknowledge")
    assert alert["flow_run_id"] != dead_run
    repaired = next(e for e in alert["trace"] if e["step"] == "repaired")
    assert repaired["actor"] == "auditor"
    assert repaired["detail"]["previous_run"] == dead_run
    assert "cancelled" in repaired["detail"]["reason"]
    acked = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "alice"})
    assert acked.status_code == 200, acked.text


def test_serving_process_killed_while_a_step_runs_loses_neither_the_run_nor_the_answer(
    stack: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from prefect import get_client

    from axtrace.settings import get_settings

    alert_id = stack.raise_alert("alpha", "Machine dies mid-step")
    run_id = waiting(stack, alert_id, "acknowledge")["flow_run_id"]
    with get_client(sync_client=True) as client:
        client.resume_flow_run(run_id, run_input={"responder": "alice"})

        def running() -> bool:
            state = client.read_flow_run(run_id).state
            return state is not None and state.type.value == "RUNNING"

        wait_until(running, timeout=60, interval=0.05, what="the run executing its steps")
    stack.stop_serve(kill=True)  # the runner and the run's own process, as a crash would
    try:
        time.sleep(3)
    finally:
        stack.start_serve()
    monkeypatch.setenv("AXTRACE_STUCK_RUN_SECONDS", "2")
    get_settings.cache_clear()
    try:
        async def audit() -> dict[str, int]:
            async with get_client() as client:
                return await audit_once(client)

        assert asyncio.run(audit())["rescheduled"] >= 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    alert = waiting(stack, alert_id, "resolve")
    assert alert["acknowledged_by"] == "alice", "the answer given before the crash counts"
    assert alert["flow_run_id"] == run_id, "the same run, not a second one"
    assert [e["step"] for e in alert["trace"]].count("acknowledged") == 1
    repaired = [e for e in alert["trace"] if e["step"] == "repaired"]
    assert repaired[-1]["detail"]["action"] == "reschedule"
