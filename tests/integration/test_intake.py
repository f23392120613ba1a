"""Alert intake against real processes: a real Alertmanager, concurrent senders, credentials."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select

from axtrace.intake.signatures import sign_grafana_hmac, sign_standard_webhook
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import Alert, Delivery
from axtrace.runtime import stop, wait_healthy
from axtrace.testing import Stack, free_port, wait_until
from tests.conftest import GRAFANA_SECRET
from tests.conftest import INTAKE_TOKEN as TOKEN
from tests.conftest import SIGNING_SECRET as SECRET

pytestmark = [pytest.mark.integration, pytest.mark.slow]



def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("AXTRACE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{binary} is required (apt-get install prometheus-alertmanager)")
        pytest.skip(f"{binary} not installed (Debian package prometheus-alertmanager)")
    return path


def ledger_counts() -> tuple[int, int]:
    with Session(engine_for(os.environ["AXTRACE_DATABASE_URL"])) as session:
        alerts = session.exec(select(func.count()).select_from(Alert)).one()
        deliveries = session.exec(select(func.count()).select_from(Delivery)).one()
    return int(alerts), int(deliveries)


def deliveries(**where: Any) -> list[Delivery]:
    with Session(engine_for(os.environ["AXTRACE_DATABASE_URL"])) as session:
        query = select(Delivery).order_by(col(Delivery.id))
        for name, value in where.items():
            query = query.where(getattr(Delivery, name) == value)
        return list(session.exec(query).all())


def runs_named(name: str) -> int:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        return len(client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))))


def signed(body: bytes, *, msg_id: str, at: int | None = None, secret: str = SECRET,
           ) -> dict[str, str]:
    timestamp = at if at is not None else int(time.time())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard_webhook(secret, msg_id, timestamp, body),
            "authorization": f"Bearer {TOKEN}", "content-type": "application/json"}


def native(site: str, key: str, title: str = "Crack") -> bytes:
    return json.dumps({"site": site, "key": key, "title": title}).encode()


# --------------------------------------------------------------------------- Alertmanager


class FlakyProxy(ThreadingHTTPServer):
    """Answers the first POST with 503, forwards the rest to the intake (to see AM retry)."""

    def __init__(self, target: str) -> None:
        self.target, self.calls, self.failed = target, 0, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                proxy.calls += 1
                if proxy.failed == 0:
                    proxy.failed += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "authorization")}
                answer = httpx.post(proxy.target + self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *_: Any) -> None:
                return

        super().__init__(("127.0.0.1", free_port()), Handler)


@pytest.fixture
def alertmanager(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, FlakyProxy]]:
    binary = require("prometheus-alertmanager")
    proxy = FlakyProxy(f"http://127.0.0.1:{stack.api_port}")
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: axtrace
  group_by: [alertname, site]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: axtrace
    webhook_configs:
      - url: http://127.0.0.1:{proxy.server_address[1]}/v1/alerts/alertmanager
        send_resolved: true
""")
    with (tmp_path / "am.log").open("ab") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/-/ready", timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}", proxy
    finally:
        stop(proc)
        proxy.shutdown()
        proxy.server_close()


def post_to_alertmanager(url: str, alerts: list[dict[str, Any]]) -> None:
    httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()


def test_a_real_alertmanager_starts_one_run_per_alert_and_resolving_closes_it(
    stack: Stack, alertmanager: tuple[str, FlakyProxy],
) -> None:
    url, proxy = alertmanager
    started = datetime.now(UTC).replace(microsecond=0)
    stamp = started.isoformat().replace("+00:00", "Z")
    firing = [
        {"labels": {"alertname": "FreezerWarm", "site": "alpha", "severity": "critical"},
         "annotations": {"summary": "Freezer 4 warming"}, "startsAt": stamp},
        {"labels": {"alertname": "ModelDrift", "site": "delta", "severity": "warning"},
         "annotations": {"summary": "Forecast drift"}, "startsAt": stamp},
    ]
    post_to_alertmanager(url, firing)

    def mine() -> list[dict[str, Any]]:
        listed = stack.http.get("/v1/alerts", params={"since": started.isoformat()}).json()
        return [a for a in listed if a["source"] == "alertmanager"]

    found = wait_until(lambda: len(mine()) == 2 and mine(), timeout=60, what="two occurrences")
    assert {a["site"] for a in found} == {"alpha", "delta"}
    assert proxy.failed == 1, "AM was answered 503 once"
    assert proxy.calls >= 2, "... and retried"
    for alert in found:
        stack.wait_for(alert["id"], lambda a: a["level"] == 1 and a["flow_run_id"])

    post_to_alertmanager(url, firing)  # a repeat while open: counted, no new run
    time.sleep(4)
    assert len(mine()) == 2

    freezer = next(a for a in found if a["site"] == "alpha")
    ended = (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    post_to_alertmanager(url, [{**firing[0], "endsAt": ended}])
    closed = stack.wait_for(freezer["id"], lambda a: a["status"] == "closed", timeout=90)
    assert closed["outcome"] == "resolved_at_source"
    assert closed["trace"][-2]["actor"] == "source:alertmanager"
    assert runs_named(f"alpha/{freezer['id']}") == 1
    drift = next(a for a in found if a["site"] == "delta")
    assert stack.alert(drift["id"])["status"] == "open"


# --------------------------------------------------------------------------- idempotency


def test_a_hundred_concurrent_identical_deliveries_make_one_occurrence_and_one_run(
    stack: Stack,
) -> None:
    body = native("alpha", f"storm-{time.time_ns()}", "Storm of duplicates")
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(
            lambda _: httpx.post(f"{stack.http.base_url}/v1/alerts", content=body, timeout=60,
                                 headers={"content-type": "application/json"}), range(100)))
    assert all(a.status_code in (200, 202) for a in answers), {a.status_code for a in answers}
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    (alert_id,) = ids
    stack.wait_for(alert_id, lambda a: a["level"] == 1)
    time.sleep(2)
    assert runs_named(f"alpha/{alert_id}") == 1
    assert sum(a.status_code == 202 for a in answers) >= 1


def test_a_resolve_that_arrives_before_its_firing_closes_the_occurrence_at_once(
    stack: Stack,
) -> None:
    key = f"early-{time.time_ns()}"
    resolve = {"routing_key": "R" * 32, "event_action": "resolve", "dedup_key": key}
    answer = stack.http.post("/v1/alerts/pagerduty", json=resolve)
    assert answer.status_code == 202, answer.text
    trigger = {"routing_key": "R" * 32, "event_action": "trigger", "dedup_key": key,
               "payload": {"summary": "Late firing", "source": "svc", "severity": "error",
                           "custom_details": {"site": "alpha"}}}
    fired = stack.http.post("/v1/alerts/pagerduty", json=trigger)
    assert fired.status_code == 202
    assert fired.json()["dedup_key"] == key
    closed = stack.wait_for(fired.json()["id"], lambda a: a["status"] == "closed", timeout=90)
    assert [e["step"] for e in closed["trace"]] == ["received", "assigned", "resolved", "closed"]


def test_pagerduty_senders_get_pagerduty_answers_and_the_routing_key_is_never_stored(
    stack: Stack,
) -> None:
    routing_key = "Rk" + "9" * 30
    key = f"pd-{time.time_ns()}"
    trigger = {"routing_key": routing_key, "event_action": "trigger", "dedup_key": key,
               "payload": {"summary": "Anomaly score 0.97", "source": "model-42",
                           "severity": "critical", "custom_details": {"site": "alpha"}}}
    answer = stack.http.post("/v1/alerts/pagerduty", json=trigger)
    assert answer.status_code == 202
    assert answer.json()["status"] == "success"
    assert answer.json()["dedup_key"] == key
    alert_id = answer.json()["id"]
    stack.wait_for(alert_id, lambda a: a["level"] == 1)
    resolve = {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    assert stack.http.post("/v1/alerts/pagerduty", json=resolve).status_code == 202
    stack.wait_for(alert_id, lambda a: a["status"] == "closed", timeout=90)

    invalid = stack.http.post("/v1/alerts/pagerduty", json={"event_action": "explode"})
    assert invalid.status_code == 400
    assert invalid.json()["status"] == "invalid event"
    assert invalid.json()["errors"]
    database = Path(os.environ["AXTRACE_DATABASE_URL"].removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):
        assert routing_key.encode() not in path.read_bytes(), f"routing key found in {path}"


# --------------------------------------------------------------------------- credentials


def test_signed_and_token_authenticated_deliveries_are_accepted_once(
    stack: Stack, secured: httpx.Client,
) -> None:
    body = native("alpha", f"signed-{time.time_ns()}")
    msg_id = f"msg_{time.time_ns()}"
    first = secured.post("/v1/alerts", content=body, headers=signed(body, msg_id=msg_id))
    assert first.status_code == 202, first.text
    again = secured.post("/v1/alerts", content=body, headers=signed(body, msg_id=msg_id))
    assert again.status_code == 200
    assert again.json()["duplicate_delivery"] is True
    assert again.json()["id"] == first.json()["id"]

    grafana = json.dumps({"receiver": "axtrace", "status": "firing", "version": "1",
                          "alerts": [{"status": "firing", "labels": {"alertname": "G",
                                      "site": "alpha"}, "fingerprint": f"g{time.time_ns()}",
                                      "startsAt": "2026-11-26T00:00:00Z"}]}).encode()
    ok = secured.post("/v1/alerts/grafana", content=grafana, headers={
        "authorization": f"Bearer {TOKEN}", "content-type": "application/json",
        "x-grafana-alerting-signature": sign_grafana_hmac(GRAFANA_SECRET, grafana)})
    assert ok.status_code == 202, ok.text


@pytest.mark.parametrize(("change", "header"), [
    ("tampered body", "webhook-signature"),
    ("wrong secret", "webhook-signature"),
    ("timestamp 6 minutes old", "webhook-timestamp"),
    ("timestamp 6 minutes ahead", "webhook-timestamp"),
    ("no signature header", "webhook-signature"),
    ("malformed base64", "webhook-signature"),
    ("no bearer token", "authorization"),
    ("wrong bearer token", "authorization"),
])
def test_bad_credentials_get_401_naming_the_header_and_leave_the_ledger_unchanged(
    stack: Stack, secured: httpx.Client, change: str, header: str,
) -> None:
    body = native("alpha", f"bad-{time.time_ns()}")
    headers = signed(body, msg_id=f"msg_{time.time_ns()}")
    if change == "tampered body":
        body = body.replace(b"Crack", b"Crock")
    elif change == "wrong secret":
        headers = signed(body, msg_id="m1", secret="whsec_" + base64.b64encode(b"x" * 24).decode())
    elif change.startswith("timestamp"):
        shift = -360 if "old" in change else 360
        headers = signed(body, msg_id="m2", at=int(time.time()) + shift)
    elif change == "no signature header":
        del headers["webhook-signature"]
    elif change == "malformed base64":
        headers["webhook-signature"] = "v1,@@@not-base64@@@"
    elif change == "no bearer token":
        del headers["authorization"]
    else:
        headers["authorization"] = "Bearer nope"
    before = ledger_counts()
    answer = secured.post("/v1/alerts", content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["detail"][0]["loc"][-1] == header
    assert ledger_counts() == before


# --------------------------------------------------------------------------- bad input


def test_oversized_malformed_and_misrouted_bodies_get_clear_4xx_and_are_recorded(
    stack: Stack,
) -> None:
    before_alerts, _ = ledger_counts()
    huge = stack.http.post("/v1/alerts", content=b"{" + b" " * (1024 * 1024 + 1) + b"}",
                           headers={"content-type": "application/json"})
    assert huge.status_code == 413
    broken = stack.http.post("/v1/alerts", content=b'{"site": "alpha", ',
                             headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["detail"][0]["loc"] == ["body", "body"]
    not_utf8 = stack.http.post("/v1/alerts", content=b'{"title": "\xff\xfe"}',
                               headers={"content-type": "application/json"})
    assert not_utf8.status_code == 400
    marker = f"misrouted-{time.time_ns()}"
    unknown = stack.http.post("/v1/alerts/alertmanager", json={
        "version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": marker, "site": "atlantis"},
             "startsAt": "2026-11-26T00:00:00Z", "fingerprint": marker}]})
    assert unknown.status_code == 404
    assert "atlantis" in unknown.json()["detail"][0]["msg"]
    assert ledger_counts()[0] == before_alerts

    rejected = [d for d in deliveries(status="rejected") if marker in d.body]
    assert len(rejected) == 1
    assert rejected[0].http_status == 404
    assert "unknown site 'atlantis'" in (rejected[0].reason
                                                                            or "")
