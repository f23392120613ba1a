"""Closed by default, scoped tokens, browser-safe HTTP: the real app on a real SQLite ledger,
called in process (httpx's ASGI transport; sites fixed by ``AXTRACE_KNOWN_SITES``, so no
Prefect is needed for anything here but acting, which is refused before Prefect is asked)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from axtrace import api, tokens
from axtrace.ledger.db import engine_for, upgrade
from axtrace.settings import BadSetting, get_settings

INTAKE_TOKEN = "intake-t0ken"
READS = ["/v1/alerts", "/v1/alerts/1", "/v1/report"]


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    monkeypatch.setenv("AXTRACE_KNOWN_SITES", "berlin,lyon")
    for name in ("AXTRACE_INTAKE_TOKEN", "AXTRACE_SOURCES", "AXTRACE_ALLOWED_HOSTS",
                 "AXTRACE_REQUIRE_RESPONDER_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    upgrade(url)
    yield url
    get_settings.cache_clear()


def calls(*requests: tuple[Any, ...], base: str = "http://127.0.0.1:4280",
          ) -> list[httpx.Response]:
    """Requests ``(method, path, kwargs)`` one after another to a fresh app in process."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=api.create_app(background=False))
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            return [await client.request(method, path, **(kw[0] if kw else {}))
                    for method, path, *kw in requests]

    return asyncio.run(run())


def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    return calls((method, path, kwargs))[0]


def raise_alerts(*sites: str, headers: dict[str, str] | None = None) -> None:
    for number, site in enumerate(sites):
        answer = call("POST", "/v1/alerts", headers=headers,
                      json={"site": site, "key": f"k{number}", "title": f"Crack {site}"})
        assert answer.status_code == 202, answer.text


def new_token(ledger: str, name: str, **kwargs: Any) -> dict[str, str]:
    with Session(engine_for(ledger)) as session:
        token = tokens.create(session, name, **kwargs)
        session.commit()
    return bearer(token)


def revoke(ledger: str, name: str) -> None:
    with Session(engine_for(ledger)) as session:
        tokens.revoke(session, name)
        session.commit()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def where(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["detail"][0]["loc"][-1]


def test_open_mode_answers_reads_and_says_so_on_every_response(ledger: str) -> None:
    raise_alerts("berlin")
    for answer in calls(*[("GET", path) for path in [*READS, "/healthz"]]):
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-axtrace-open"] == "true"
    refused = call("GET", "/v1/alerts", headers={"host": "evil.example"})
    assert refused.headers["x-axtrace-open"] == "true", "refusals say so too"


@pytest.fixture
def reader(ledger: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The API closed by the intake token, berlin's alerts raised with it; the header of a
    read-only token."""
    monkeypatch.setenv("AXTRACE_INTAKE_TOKEN", INTAKE_TOKEN)
    get_settings.cache_clear()
    raise_alerts("berlin", headers=bearer(INTAKE_TOKEN))
    return new_token(ledger, "dashboard", scope="read")


def test_with_the_intake_token_set_every_read_needs_a_credential(
    ledger: str, reader: dict[str, str],
) -> None:
    responder = new_token(ledger, "alice")
    for path in READS:
        anonymous = call("GET", path)
        assert where(anonymous) == (401, "authorization"), path
        assert "Crack" not in anonymous.text
        assert "x-axtrace-open" not in anonymous.headers
        assert where(call("GET", path, headers=bearer("axt_guessed"))) == (401, "authorization")
        for credential in (bearer(INTAKE_TOKEN), reader, responder):
            answer = call("GET", path, headers=credential)
            assert answer.status_code == 200, (path, answer.text)
    assert call("GET", "/healthz").status_code == 200
    assert call("GET", "/openapi.json").status_code == 200


def test_a_token_for_one_site_reads_that_site_only(ledger: str) -> None:
    raise_alerts("berlin", "lyon", "berlin")  # ids 1, 2, 3
    lead = new_token(ledger, "lena", sites=["berlin"])
    listed = call("GET", "/v1/alerts", headers=lead).json()
    assert sorted(a["id"] for a in listed) == [1, 3]
    assert call("GET", "/v1/alerts?site=lyon", headers=lead).json() == []
    assert call("GET", "/v1/alerts/1", headers=lead).status_code == 200
    other, missing = (call("GET", f"/v1/alerts/{n}", headers=lead) for n in (2, 99))
    assert where(other) == (404, "alert_id")
    assert other.json()["detail"][0]["msg"] == "no alert with id 2", "nothing confirms it exists"
    assert missing.json()["detail"][0]["msg"] == "no alert with id 99"
    assert [a.json()["detail"][0]["loc"] for a in (other, missing)] == [["path", "alert_id"]] * 2
    report = call("GET", "/v1/report", headers=lead)
    assert [s["site"] for s in report.json()["sites"]] == ["berlin"], report.text
    assert "lyon" not in report.text
    assert where(call("GET", "/v1/report?site=lyon", headers=lead)) == (404, "site")
    assert where(call("POST", "/v1/alerts/2/ack", headers=lead, json={})) == (404, "alert_id")


def test_revoking_the_last_token_keeps_the_api_closed(ledger: str) -> None:
    raise_alerts("berlin")
    alice = new_token(ledger, "alice")
    revoke(ledger, "alice")
    assert where(call("GET", "/v1/alerts")) == (401, "authorization")
    assert where(call("GET", "/v1/alerts", headers=alice)) == (401, "authorization")
    acting = call("POST", "/v1/alerts/1/ack", json={"responder": "alice"})
    assert where(acting) == (401, "authorization"), "responder checks stay on"
    assert "x-axtrace-open" not in acting.headers


def test_a_read_only_token_or_the_intake_token_cannot_act(reader: dict[str, str]) -> None:
    for credential in (reader, bearer(INTAKE_TOKEN)):
        answer = call("POST", "/v1/alerts/1/ack", headers=credential, json={})
        assert where(answer) == (403, "authorization")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          None])
@pytest.mark.parametrize("path", ["/v1/alerts", "/v1/alerts/alertmanager", "/v1/alerts/1/ack"])
def test_a_post_that_is_not_json_is_415_naming_the_content_type(
    ledger: str, path: str, content_type: str | None,
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = call("POST", path, content=b'{"site": "berlin", "title": "x"}', headers=headers)
    assert where(answer) == (415, "content-type")
    assert call("GET", "/v1/alerts").json() == [], "nothing was stored"


def test_json_with_a_charset_is_json(ledger: str) -> None:
    answer = call("POST", "/v1/alerts", content=b'{"site": "berlin", "title": "x"}',
                  headers={"content-type": "application/json; charset=utf-8"})
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:4280", "192.0.2.1"])
def test_a_host_not_allowed_is_400_naming_the_host(ledger: str, host: str) -> None:
    for method, path in [("GET", "/v1/alerts"), ("POST", "/v1/alerts"), ("GET", "/v1/report"),
                         ("GET", "/openapi.json")]:
        answer = call(method, path, headers={"host": host}, json={"site": "berlin",
                                                                  "title": "x"})
        assert where(answer) == (400, "host")
    assert call("GET", "/v1/alerts").json() == []
    probe = call("GET", "/healthz", headers={"host": host})
    assert probe.json() == {"status": "ok"}, "a load balancer probes by address"


def test_allowed_hosts_can_be_configured(ledger: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AXTRACE_ALLOWED_HOSTS", "axtrace.example")
    get_settings.cache_clear()
    assert call("GET", "/v1/alerts", headers={"host": "axtrace.example"}).status_code == 200
    assert where(call("GET", "/v1/alerts")) == (400, "host")


def test_a_misspelled_allowed_hosts_value_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AXTRACE_ALLOWED_HOSTS", "https://axtrace.example/")
    get_settings.cache_clear()
    with pytest.raises(BadSetting, match=r"AXTRACE_ALLOWED_HOSTS: .*not a host name") as caught:
        get_settings()
    assert caught.value.field == "AXTRACE_ALLOWED_HOSTS"
    get_settings.cache_clear()


@pytest.mark.parametrize(("headers", "field"), [
    ({"origin": "https://evil.example"}, "origin"),
    ({"origin": "null"}, "origin"),
    ({"sec-fetch-site": "cross-site"}, "sec-fetch-site"),
])
def test_a_cross_origin_request_is_403_naming_the_header(
    ledger: str, headers: dict[str, str], field: str,
) -> None:
    posted = call("POST", "/v1/alerts", headers=headers, json={"site": "berlin", "title": "x"})
    assert where(posted) == (403, field)
    assert where(call("GET", "/v1/alerts", headers=headers)) == (403, field)
    assert call("GET", "/v1/alerts").json() == []


def test_no_cors_header_is_ever_sent(ledger: str) -> None:
    preflight = call("OPTIONS", "/v1/alerts", headers={
        "origin": "http://127.0.0.1:4280", "access-control-request-method": "POST"})
    same = call("GET", "/v1/alerts", headers={"origin": "http://localhost:4280"})
    assert same.status_code == 200
    for answer in (preflight, same):
        assert not [h for h in answer.headers if h.startswith("access-control-")]


def test_without_an_intake_credential_the_api_refuses_to_listen_beyond_loopback(
    ledger: str,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AXTRACE_INTAKE_TOKEN"}
    started = subprocess.run(
        [sys.executable, "-m", "axtrace", "intake", "--host", "0.0.0.0", "--port", "1"],  # noqa: S104
        env=env, capture_output=True, text=True, timeout=120, check=False)
    said = " ".join(started.stderr.split())
    assert started.returncode == 1
    assert "loopback only, not 0.0.0.0" in said
    assert "AXTRACE_INTAKE_TOKEN" in said


def test_an_open_intake_says_so_at_start_and_on_every_answer(
    ledger: str, tmp_path: Path,
) -> None:
    from axtrace.runtime import start_child, stop, wait_healthy
    from axtrace.testing import free_port

    port, log = free_port(), tmp_path / "intake.log"
    env = {k: v for k, v in os.environ.items() if k != "AXTRACE_INTAKE_TOKEN"}
    proc = start_child(["intake", "--port", str(port), "--no-background"], log, env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=proc)
        answers = [httpx.get(f"http://127.0.0.1:{port}{path}", timeout=30)
                   for path in ("/healthz", "/v1/alerts")]
    finally:
        stop(proc)
    assert [a.headers.get("x-axtrace-open") for a in answers] == ["true", "true"]
    assert "OPEN mode" in " ".join(log.read_text().split())
