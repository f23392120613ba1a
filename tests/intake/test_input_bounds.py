"""No input is a 500: nesting, alerts per delivery, header sizes, reused webhook ids and
naive times each get a 4xx naming the field. The parsers directly, then the HTTP app in
process on a real SQLite ledger (sites fixed by ``AXTRACE_KNOWN_SITES``: no Prefect needed
for a refusal)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from axtrace import api
from axtrace.intake.envelope import TooDeep, TooMany
from axtrace.intake.registry import SOURCES, parse
from axtrace.intake.service import accept
from axtrace.intake.sources._common import MAX_DEPTH
from axtrace.ledger.db import engine_for, upgrade
from axtrace.ledger.models import Alert, Delivery
from axtrace.settings import Settings, get_settings
from tests.intake.support import CONFIG, ROUTING_KEY, load

SITE = "berlin-plant"


def nested(depth: int, leaf: object = "x") -> object:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def pagerduty(custom_details: object) -> dict[str, Any]:
    event = load("pagerduty_trigger.json")
    event["payload"]["custom_details"] = custom_details
    return dict(event)


# --------------------------------------------------------------------------- the parsers


def test_deeply_nested_pagerduty_details_are_refused_naming_the_field() -> None:
    with pytest.raises(TooDeep) as refused:
        parse("pagerduty", pagerduty(nested(900)), CONFIG)
    assert refused.value.status_code == 400
    assert refused.value.field is not None
    assert refused.value.field.startswith("payload.custom_details.a.a.a")
    assert len(refused.value.field) <= 200


def test_nesting_up_to_the_bound_is_accepted() -> None:
    event = pagerduty(nested(MAX_DEPTH - 3))  # body > payload > custom_details > ...
    assert parse("pagerduty", event, CONFIG)[0].details["custom_details"]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_source_refuses_a_body_nested_too_deep(source: str) -> None:
    with pytest.raises(TooDeep):
        parse(source, {"alerts": [nested(MAX_DEPTH)]}, CONFIG)


@pytest.mark.parametrize("source", ["native", "alertmanager", "grafana"])
def test_more_alerts_than_one_delivery_may_carry_are_refused_before_parsing(source: str) -> None:
    body = {"alerts": [{} for _ in range(11)]}  # not even valid alerts: counted first
    with pytest.raises(TooMany) as refused:
        parse(source, body, CONFIG, max_alerts=10)
    assert (refused.value.status_code, refused.value.field) == (413, "alerts")
    assert "11 alerts in one delivery; at most 10" in refused.value.message


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    monkeypatch.setenv("AXTRACE_KNOWN_SITES", SITE)
    monkeypatch.delenv("AXTRACE_INTAKE_TOKEN", raising=False)
    monkeypatch.delenv("AXTRACE_SOURCES", raising=False)
    get_settings.cache_clear()
    upgrade(url)
    yield get_settings()
    get_settings.cache_clear()


def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to a fresh app in process (a JSON body, as every source sends)."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=api.create_app(background=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                     headers={"content-type": "application/json"}) as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(run())


def where(response: httpx.Response) -> tuple[int, list[str], str]:
    detail = response.json()["detail"][0]
    return response.status_code, detail["loc"], detail["msg"]


def deliveries(settings: Settings) -> list[Delivery]:
    with Session(engine_for(settings.ledger_url)) as session:
        return list(session.exec(select(Delivery).order_by(Delivery.id)))  # type: ignore[arg-type]


def test_nested_pagerduty_details_are_a_recorded_400_naming_the_field(
    settings: Settings,
) -> None:
    event = pagerduty(nested(900))
    event["routing_key"] = ROUTING_KEY
    answer = call("POST", "/v1/alerts/pagerduty", content=json.dumps(event))
    assert answer.status_code == 400
    assert answer.json()["errors"][0].startswith("payload.custom_details.a.a.a")
    assert "nests more than 32" in answer.json()["errors"][0]
    rejected = deliveries(settings)[-1]
    assert (rejected.status, rejected.http_status) == ("rejected", 400)
    assert rejected.field is not None
    assert rejected.field.startswith("payload.custom_details")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deep_native_bodies_are_400_naming_the_field_or_the_body(
    settings: Settings, depth: int,
) -> None:
    body = {"site": SITE, "title": "Seam", "details": nested(depth)}
    answer = call("POST", "/v1/alerts", content=json.dumps(body) if depth < 900
                  else '{"site": "berlin-plant", "title": "Seam", "details": '
                  + '{"a": ' * depth + "1" + "}" * depth + "}")
    status, loc, message = where(answer)
    assert status == 400
    assert loc[:3] == (["body", "details", "a"] if depth < 900 else ["body", "body"])
    assert "nest" in message


def test_a_delivery_over_the_alert_cap_is_a_413_naming_alerts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = {"alerts": [{"site": SITE, "key": f"k{i}", "title": "Seam"} for i in range(1001)]}
    status, loc, message = where(call("POST", "/v1/alerts", json=body))
    assert (status, loc) == (413, ["body", "alerts"])
    assert "1001 alerts in one delivery; at most 1000" in message
    monkeypatch.setenv("AXTRACE_MAX_ALERTS_PER_DELIVERY", "2")
    get_settings.cache_clear()
    status, loc, _ = where(call("POST", "/v1/alerts", json={"alerts": body["alerts"][:3]}))
    assert (status, loc) == (413, ["body", "alerts"])
    with Session(engine_for(settings.ledger_url)) as session:
        assert session.exec(select(Alert)).first() is None, "no alert of it was opened"


def test_an_over_long_header_value_is_a_400_naming_the_header(settings: Settings) -> None:
    body = {"site": SITE, "title": "Seam"}
    answer = call("POST", "/v1/alerts", json=body, headers={"x-trace": "a" * 5000})
    assert where(answer)[:2] == (400, ["body", "x-trace"])
    answer = call("POST", "/v1/alerts", json=body, headers={"webhook-id": "m" * 256})
    assert where(answer)[:2] == (400, ["body", "webhook-id"])
    answer = call("POST", "/v1/alerts/grafana", json=body,
                  headers={"authorization": "Bearer " + "t" * 5000})
    assert where(answer)[:2] == (400, ["body", "authorization"])


def test_a_webhook_id_reused_for_another_body_is_a_recorded_409(settings: Settings) -> None:
    first = {"site": SITE, "key": "k1", "title": "Seam"}
    taken = accept(source="native", raw=json.dumps(first).encode(), webhook_id="msg-1",
                   known_sites={SITE}, settings=settings)
    assert taken.status == 202
    again = call("POST", "/v1/alerts", content=json.dumps(first),
                 headers={"webhook-id": "msg-1", "content-type": "application/json"})
    assert again.status_code == 200
    assert again.json()["duplicate_delivery"] is True
    other = {"site": SITE, "key": "k2", "title": "Another seam"}
    refused = call("POST", "/v1/alerts", json=other, headers={"webhook-id": "msg-1"})
    status, loc, message = where(refused)
    assert (status, loc) == (409, ["body", "webhook-id"])
    assert refused.json()["detail"][0]["type"] == "Conflict"
    assert f"delivery {taken.body['delivery']}" in message
    last = deliveries(settings)[-1]
    assert (last.status, last.http_status, last.field) == ("rejected", 409, "webhook-id")
    assert last.result == {"rejected_webhook_id": "msg-1"}


def test_since_without_an_offset_is_taken_as_utc(settings: Settings) -> None:
    accept(source="native", raw=b'{"site": "berlin-plant", "key": "k", "title": "Seam"}',
           webhook_id=None, known_sites={SITE}, settings=settings)
    naive = call("GET", "/v1/alerts", params={"since": "2000-01-01T00:00:00"})
    assert naive.status_code == 200
    assert [a["key"] for a in naive.json()] == ["k"]
    assert call("GET", "/v1/alerts", params={"since": "2999-01-01T00:00:00"}).json() == []
    bad = call("GET", "/v1/alerts", params={"since": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "since"]
