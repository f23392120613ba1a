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


def at_level_one(stack: Stack, alert_id: int) -> dict[str, Any]:
    return stack.wait_for(alert_id, lambda a: a["level"] >= 1 and bool(a["flow_run_id"]))


def test_with_responder_tokens_the_token_decides_who_acts(guarded: Stack) -> None:
    alice = guarded.axtrace("tokens", "create", "alice").stdout.strip()
    mallory = guarded.axtrace("tokens", "create", "mallory").stdout.strip()
    assert alice.startswith("axt_")
    alert_id = guarded.raise_alert("alpha", "Tokens in use")
    at_level_one(guarded, alert_id)
    before = steps(guarded, alert_id)

    anonymous = httpx.post(f"{guarded.http.base_url}/v1/alerts/{alert_id}/ack",
                           json={"responder": "alice"}, timeout=60)
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"][0]["loc"][-1] == "authorization"
    assert steps(guarded, alert_id) == before, "a request without a token changes nothing"

    posing = guarded.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "bob"},
                               headers=bearer(alice))
    assert posing.status_code == 403
    outsider = guarded.http.post(f"/v1/alerts/{alert_id}/ack", json={},
                                 headers=bearer(mallory))
    assert outsider.status_code == 403
    assert outsider.json()["detail"][0]["loc"][-1] == "responder"
    assert "alice" not in outsider.text, "a 403 does not say who may act"
    assert "bob" not in outsider.text
    trace = guarded.alert(alert_id)["trace"]
    assert [(e["step"], e["actor"]) for e in trace[-2:]] == [
        ("refused", "alice"), ("refused", "mallory")], "the trace names who authenticated"
    assert "'bob'" in trace[-2]["detail"]["reason"], "and what they claimed"

    acked = guarded.http.post(f"/v1/alerts/{alert_id}/ack", json={}, headers=bearer(alice))
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "alice"
    assert ("acknowledged", "alice") in steps(guarded, alert_id)
    database = Path(guarded.env["AXTRACE_DATABASE_URL"].removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):
        assert alice.encode() not in path.read_bytes(), "tokens are stored hashed"


def test_the_cli_reads_and_acts_with_the_users_token(guarded: Stack) -> None:
    token = guarded.axtrace("tokens", "create", "bob").stdout.strip()
    alert_id = guarded.raise_alert("alpha", "The CLI with a token")
    at_level_one(guarded, alert_id)
    user = {k: v for k, v in guarded.env.items() if k != "AXTRACE_INTAKE_TOKEN"}
    refused = guarded.axtrace("trace", str(alert_id), env=user, check=False)
    assert refused.returncode == 2
    assert "authorization" in refused.stderr
    user["AXTRACE_RESPONDER_TOKEN"] = token  # the one line a user adds
    acked = guarded.axtrace("ack", str(alert_id), "--as", "bob", env=user)
    assert "acknowledged by bob" in acked.stdout
    traced = guarded.axtrace("trace", str(alert_id), env=user)
    assert "The CLI with a token" in traced.stdout
    listed = guarded.axtrace("tokens", "list").stdout
    for shown in ("bob", "respond", "every site"):
        assert shown in listed


def test_revoking_every_token_keeps_responder_checks_on(guarded: Stack) -> None:
    guarded.axtrace("tokens", "create", "carol")
    for name in ("alice", "mallory", "bob", "carol"):
        guarded.axtrace("tokens", "revoke", name)
    alert_id = guarded.raise_alert("alpha", "After the last revoke")
    answer = guarded.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "alice"})
    assert answer.status_code == 403, answer.text  # the intake token may read, not act
    assert answer.json()["detail"][0]["loc"][-1] == "authorization"


def test_an_open_stack_says_so_on_every_answer(stack: Stack) -> None:
    for answer in (stack.http.get("/healthz"), stack.http.get("/v1/alerts")):
        assert answer.headers["x-axtrace-open"] == "true"


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
