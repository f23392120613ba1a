"""``POST /v1/heartbeats`` in process: the app, a fresh real SQLite ledger, and the session's
real Prefect server holding the site's policy block (what ``sites apply`` saves). Each test
saves a policy of its own, watching detectors with a long window (the session's sweeper reads
every policy block too, and must raise nothing in its own ledger)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from axtrace import api
from axtrace.heartbeats import raise_silences
from axtrace.ledger.db import engine_for, upgrade
from axtrace.ledger.models import Alert, Heartbeat, utcnow
from axtrace.settings import get_settings
from axtrace_blocks import OwnershipPolicy

pytestmark = [pytest.mark.integration]
TOKEN = "heartbeat-intake-t0ken"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api_url: str,
         ) -> Iterator[str]:
    """A site whose policy watches ``seam-vision`` (1 h), saved on the real Prefect server."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    for name in ("AXTRACE_INTAKE_TOKEN", "AXTRACE_SOURCES", "AXTRACE_KNOWN_SITES"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    upgrade(url)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    block_id = OwnershipPolicy.model_validate({
        "site": name, "owning_team": "Probe", "resolve_within": "1h",
        "escalation_chain": [{"responders": ["anna"], "acknowledge_within": "15m"}],
        "detectors": [{"name": "seam-vision", "heartbeat_within": "1h"}],
    }).save(name)
    try:
        yield name
    finally:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            client.delete_block_document(block_id)
        get_settings.cache_clear()


def post(*bodies: Any, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=api.create_app(background=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return [await client.post("/v1/heartbeats", json=body, headers=headers)
                    for body in bodies]

    return asyncio.run(run())


def where(answer: httpx.Response) -> tuple[int, list[str], str]:
    detail = answer.json()["detail"][0]
    return answer.status_code, detail["loc"], detail["msg"]


def heartbeats() -> list[Heartbeat]:
    with Session(engine_for(get_settings().ledger_url)) as session:
        return list(session.exec(select(Heartbeat)).all())


def test_a_heartbeat_is_in_the_ledger_when_it_is_answered(site: str) -> None:
    [answer] = post({"site": site, "detector": "seam-vision"})

    assert answer.status_code == 202
    assert answer.json() == {"site": site, "detector": "seam-vision", "status": "heartbeat",
                             "resolving": None}
    [row] = heartbeats()
    assert (row.site, row.detector, row.beats, row.last_via) == (site, "seam-vision", 1, "api")


def test_an_unknown_site_or_detector_is_404_naming_it(site: str) -> None:
    nowhere, unwatched = post({"site": "nowhere-x", "detector": "seam-vision"},
                              {"site": site, "detector": "seam-vison"})

    assert where(nowhere) == (404, ["body", "site"], "unknown site 'nowhere-x': add it to "
                              "sites.yaml and run `axtrace sites apply`")
    assert where(unwatched)[:2] == (404, ["body", "detector"])
    assert f"site '{site}' watches no detector 'seam-vison'" in where(unwatched)[2]
    assert heartbeats() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"detector": "seam-vision"}, "site"),
    ({"site": "Not A Slug", "detector": "seam-vision"}, "site"),
    ({"site": "berlin", "detector": ""}, "detector"),
    ({"site": "berlin", "detector": "x" * 201}, "detector"),
    ({"site": "berlin", "detector": "x", "when": "now"}, "when"),
])
def test_a_bad_body_is_422_naming_the_field(site: str, body: dict[str, Any], field: str,
                                            ) -> None:
    [answer] = post(body)

    assert where(answer)[:2] == (422, ["body", field])


def test_heartbeats_need_the_intake_credentials(
    site: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AXTRACE_INTAKE_TOKEN", TOKEN)
    get_settings.cache_clear()
    body = {"site": site, "detector": "seam-vision"}

    [without] = post(body)
    [wrong] = post(body, headers={"authorization": "Bearer nope"})
    [right] = post(body, headers={"authorization": f"Bearer {TOKEN}"})

    assert where(without)[:2] == (401, ["body", "authorization"])
    assert where(wrong)[:2] == (401, ["body", "authorization"])
    assert right.status_code == 202
    assert [row.beats for row in heartbeats()] == [1]


def test_a_heartbeat_answers_which_silence_it_resolves(site: str) -> None:
    engine = engine_for(get_settings().ledger_url)
    known = {site: {"seam-vision": timedelta(hours=1)}}
    with engine.begin() as conn:
        raise_silences(conn, known, utcnow() - timedelta(hours=2))  # watched 2 h ago
    with engine.begin() as conn:
        [raised] = raise_silences(conn, known, utcnow())

    [answer] = post({"site": site, "detector": "seam-vision"})

    assert answer.json()["resolving"] == raised
    with Session(engine) as session:
        alert = session.get(Alert, raised)
        assert alert is not None
        assert alert.source_resolved_at is not None
