"""Maintenance windows end to end, against a real Prefect server, serving process and ledger:
an alert received in a window is suppressed (no one paged), then released when the window
ends, also across a restart of the serving process; a resolve from the source during the
window closes it without a notification."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from axtrace.testing import Stack, wait_until
from tests.integration.test_respond import notified_at, run_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SITE = "epsilon"
"""judy acknowledges within 30 s; resolve within 30 s."""


@contextmanager
def window(seconds: float, reason: str) -> Iterator[datetime]:
    """A maintenance window at ``SITE`` from now for ``seconds``; yields its end. The site's
    policy is put back afterwards."""
    from axtrace_blocks import MaintenanceWindow, OwnershipPolicy

    original = OwnershipPolicy.load(SITE)
    start = datetime.now(UTC)
    end = start + timedelta(seconds=seconds)
    edited = original.model_copy(deep=True)
    edited.maintenance = [MaintenanceWindow(start=start, end=end, reason=reason)]
    edited.save(SITE, overwrite=True)
    try:
        yield end
    finally:
        original.save(SITE, overwrite=True)


def steps(alert: dict[str, Any]) -> list[str]:
    return [e["step"] for e in alert["trace"] if e["step"] != "refused"]


def step(alert: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in alert["trace"] if e["step"] == name)


def ledger_findings(alert_id: int) -> list[Any]:
    """What ``verify --ledger`` says of this alert: its trace (chain, implied steps) and its
    keyed seals, read from the stack's ledger with the key its processes share."""
    from sqlmodel import Session

    from axtrace.ledger import repo
    from axtrace.ledger.db import engine_for
    from axtrace.ledger.seal import ledger_key
    from axtrace.reports.verify import check_seals, check_trace
    from axtrace.settings import get_settings

    key = ledger_key(create=False)
    assert key is not None
    with Session(engine_for(get_settings().ledger_url)) as session:
        alert = repo.get_alert(session=session, alert_id=alert_id)
        events = repo.trace_of(session=session, alert_id=alert_id)
        return [*check_trace(alert, events), *check_seals(alert, events, key)]


def suppressed_run(stack: Stack, alert_id: int) -> dict[str, Any]:
    """Wait until the alert's run is suspended in its maintenance window."""
    def probe() -> dict[str, Any] | None:
        alert = stack.alert(alert_id)
        state = run_state(alert["flow_run_id"]).state if alert["flow_run_id"] else None
        key = state.state_details.pause_key if state else None
        return alert if state and state.is_paused() and key == "suppressed-0" else None

    found: dict[str, Any] = wait_until(probe, timeout=60, what="run suspended in the window")
    return found


def test_an_alert_in_a_window_is_suppressed_then_released_and_notified_when_it_ends(
    stack: Stack,
) -> None:
    with window(20, "sealer firmware update") as end:
        alert_id = stack.raise_alert(SITE, "Sealer offline", key="sealer-offline")
        alert = suppressed_run(stack, alert_id)
    assert steps(alert) == ["received", "assigned", "suppressed"]
    suppressed = step(alert, "suppressed")["detail"]
    assert suppressed["reason"] == "sealer firmware update"
    assert datetime.fromisoformat(suppressed["until"]) == end
    assert (alert["ack_deadline"], alert["resolve_deadline"]) == (None, None), "no clock runs"
    assert datetime.fromisoformat(alert["suppressed_until"]) == end

    early = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "judy"})
    assert early.status_code == 409, early.text
    assert "maintenance window" in early.text
    assert early.json()["detail"][0]["loc"] == ["body", "status"]

    alert = stack.wait_for(alert_id, notified_at(1), timeout=60, what="release at the end")
    assert steps(alert) == ["received", "assigned", "suppressed", "released", "notified"]
    released = step(alert, "released")
    released_at = datetime.fromisoformat(released["at"])
    assert released_at >= end
    assert alert["suppressed_until"] is None
    for deadline in ("ack_deadline", "resolve_deadline"):  # 30 s each, from the release
        assert datetime.fromisoformat(alert[deadline]) == datetime.fromisoformat(
            released["detail"][deadline])
        fresh = datetime.fromisoformat(alert[deadline]) - released_at
        assert timedelta(seconds=29) < fresh <= timedelta(seconds=30), deadline
    assert step(alert, "notified")["detail"]["responders"] == ["judy"]

    acked = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "judy"})
    assert acked.status_code == 200, acked.text
    assert step(acked.json(), "acknowledged")["detail"]["late_by_s"] is None, (
        "the acknowledge deadline counts from the release, not from receipt")
    assert ledger_findings(alert_id) == []


def test_a_resolve_from_the_source_during_the_window_closes_it_and_no_one_is_notified(
    stack: Stack,
) -> None:
    with window(30, "line stopped") as end:
        alert_id = stack.raise_alert(SITE, "Glue pressure low", key="glue-pressure")
        suppressed_run(stack, alert_id)
        resolved = stack.http.post("/v1/alerts", json={
            "site": SITE, "title": "Glue pressure low", "key": "glue-pressure",
            "action": "resolve"})
        assert resolved.status_code == 202, resolved.text
        closed = stack.wait_for(alert_id, lambda a: a["status"] == "closed", timeout=60)
    assert datetime.now(UTC) < end, "closed while the window still held it"
    assert steps(closed) == ["received", "assigned", "suppressed", "resolved", "closed"]
    assert closed["outcome"] == "resolved_at_source"
    assert "notified" not in steps(closed)
    assert closed["suppressed_until"] is None
    assert ledger_findings(alert_id) == [], "no ignored step is implied: no one was asked"


def test_a_restart_of_the_serving_process_while_a_window_is_pending_still_releases(
    stack: Stack,
) -> None:
    with window(12, "restart drill") as end:
        alert_id = stack.raise_alert(SITE, "Carton jam", key="carton-jam")
        suppressed_run(stack, alert_id)
    stack.stop_serve(kill=True)
    try:
        wait_until(lambda: end + timedelta(seconds=4) < datetime.now(UTC), timeout=30,
                   what="the window ended during the outage")
        assert "released" not in steps(stack.alert(alert_id)), "nothing runs it meanwhile"
    finally:
        stack.start_serve()
    alert = stack.wait_for(alert_id, notified_at(1), timeout=90,
                           what="release after the restart")
    assert steps(alert) == ["received", "assigned", "suppressed", "released", "notified"]
    assert step(alert, "released")["detail"]["late_by_s"] >= 4
