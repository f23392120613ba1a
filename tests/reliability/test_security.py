"""No one acts who should not: responder tokens, races between responders, no leaked secrets."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from axtrace.testing import Stack
from tests.integration.test_respond import waiting

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def steps(stack: Stack, alert_id: int) -> list[tuple[str, str]]:
    return [(e["step"], e["actor"]) for e in stack.alert(alert_id)["trace"]]


def test_with_responder_tokens_the_token_decides_who_acts(stack: Stack) -> None:
    alice = stack.axtrace("tokens", "create", "alice").stdout.strip()
    mallory = stack.axtrace("tokens", "create", "mallory").stdout.strip()
    try:
        assert alice.startswith("axt_")
        alert_id = stack.raise_alert("alpha", "Tokens in use")
        waiting(stack, alert_id, "acknowledge")
        before = steps(stack, alert_id)

        anonymous = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "alice"})
        assert anonymous.status_code == 401
        assert anonymous.json()["detail"][0]["loc"][-1] == "authorization"
        assert steps(stack, alert_id) == before, "a request without a token changes nothing"

        posing = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "bob"},
                                 headers=bearer(alice))
        assert posing.status_code == 403
        outsider = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={},
                                   headers=bearer(mallory))
        assert outsider.status_code == 403
        assert steps(stack, alert_id)[-2:] == [("refused", "bob"), ("refused", "mallory")]

        acked = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={}, headers=bearer(alice))
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged_by"] == "alice"
        database = Path(os.environ["AXTRACE_DATABASE_URL"].removeprefix("sqlite:///"))
        for path in database.parent.glob(database.name + "*"):
            assert alice.encode() not in path.read_bytes(), "tokens are stored hashed"
    finally:
        stack.axtrace("tokens", "revoke", "alice")
        stack.axtrace("tokens", "revoke", "mallory")


def test_concurrent_acknowledgements_one_wins_and_the_others_are_recorded_as_refused(
    stack: Stack,
) -> None:
    from prefect import get_client

    alert_id = stack.raise_alert("alpha", "Everyone reacts at once")
    run_id = waiting(stack, alert_id, "acknowledge")["flow_run_id"]

    def api(name: str) -> int:
        return httpx.post(f"{stack.http.base_url}/v1/alerts/{alert_id}/ack",
                          json={"responder": name}, timeout=120).status_code

    def ui() -> str:
        with get_client(sync_client=True) as client:
            return str(client.resume_flow_run(run_id, run_input={"responder": "carol"}).status)

    with ThreadPoolExecutor(3) as pool:
        api_answers = list(pool.map(api, ["alice", "bob"]))
        ui_answer = pool.submit(ui).result()
    alert = stack.wait_for(alert_id, lambda a: a["status"] == "acknowledged")
    acks = [e for e in alert["trace"] if e["step"] == "acknowledged"]
    assert len(acks) == 1, "exactly one acknowledgement wins"
    winner = acks[0]["actor"]
    losers = {name for name, status in zip(["alice", "bob"], api_answers, strict=True)
              if status != 200}
    refused = {e["actor"] for e in alert["trace"] if e["step"] == "refused"}
    assert losers <= refused, "API attempts that lost are recorded as refused"
    assert winner not in losers
    assert sorted(api_answers).count(200) <= 1
    assert "ACCEPT" in ui_answer or winner != "carol"


def test_secrets_never_reach_the_ledger_logs_events_or_artifacts(
    stack: Stack, secured: httpx.Client, secrets_used: dict[str, str],
) -> None:
    routing_key = "Rz" + "7" * 30
    stack.http.post("/v1/alerts/pagerduty", json={
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": "leak-check",
        "payload": {"summary": "Leak check", "source": "s", "severity": "info",
                    "custom_details": {"site": "alpha"}}}).raise_for_status()
    needles = {**secrets_used, "pagerduty routing key": routing_key}
    haystacks: dict[str, bytes] = {}
    for path in stack.workdir.rglob("*"):
        if path.is_file() and path.stat().st_size < 200_000_000:
            haystacks[str(path)] = path.read_bytes()
    api = os.environ["PREFECT_API_URL"]
    events = httpx.post(f"{api}/events/filter", json={"limit": 200}, timeout=30).content
    artifacts = httpx.post(f"{api}/artifacts/filter", json={"limit": 200}, timeout=30).content
    logs = httpx.post(f"{api}/logs/filter", json={"limit": 200}, timeout=30).content
    haystacks |= {"prefect events": events, "prefect artifacts": artifacts,
                  "prefect logs": logs}
    leaks = [(what, where) for what, secret in needles.items()
             for where, data in haystacks.items() if secret.encode() in data]
    assert leaks == []


@pytest.fixture
def secrets_used() -> dict[str, Any]:
    from tests.conftest import GRAFANA_SECRET, INTAKE_TOKEN, SIGNING_SECRET

    return {"intake token": INTAKE_TOKEN, "signing secret": SIGNING_SECRET.removeprefix("whsec_"),
            "grafana secret": GRAFANA_SECRET}
