"""The intake's HTTP route in process (the app, a real SQLite ledger, the session's real
Prefect server asked which sites exist): site lookups off the request path, events per alert.
Each test applies a site of its own as a real deployment of respond-to-alert."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from axtrace import api
from axtrace.ledger.db import upgrade
from axtrace.settings import get_settings

pytestmark = [pytest.mark.integration]


async def apply_site(site: str) -> None:
    """Deploy respond-to-alert under ``site`` on the real server (what ``sites apply`` does
    as far as the intake can tell: a deployment of that name exists)."""
    from prefect import get_client

    from axtrace.workflow import FLOW_NAME

    async with get_client() as client:
        flow_id = await client.create_flow_from_name(FLOW_NAME)
        await client.create_deployment(flow_id=flow_id, name=site)


async def remove_sites(prefix: str) -> None:
    """Delete the probe deployments a test applied: the session's server is shared, and
    ``verify`` (tests/reports) rightly names any deployment outside the sites file."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async with get_client() as client:
        found = await client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(like_=prefix)))
        for deployment in found:
            if deployment.name.startswith(prefix):
                await client.delete_deployment(deployment.id)


@pytest.fixture
def site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api_url: str,
) -> Iterator[str]:
    """A site applied on the session's Prefect server, a fresh ledger, and a record of when
    the intake asked Prefect which sites exist (the real query, timed)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    monkeypatch.delenv("AXTRACE_KNOWN_SITES", raising=False)
    get_settings.cache_clear()
    upgrade(url)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    asyncio.run(apply_site(name))
    asked: list[float] = []
    real = api._deployed_sites

    async def deployed_sites() -> set[str]:
        asked.append(time.monotonic())
        return await real()

    monkeypatch.setattr(api, "_deployed_sites", deployed_sites)
    sites_asked.clear()
    sites_asked.append(asked)
    try:
        yield name
    finally:
        asyncio.run(remove_sites(name))
        get_settings.cache_clear()


sites_asked: list[list[float]] = []


def statuses(*posts: tuple[str, str], pause_before: int | None = None,
             apply: str | None = None) -> list[Any]:
    """POST native alerts (site, key) to a fresh app in process, one after another; before
    the post numbered ``pause_before``, wait a little over a second and apply ``apply``."""

    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=api.create_app(background=False))
        answers = []
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for number, (site, key) in enumerate(posts):
                if number == pause_before:
                    await asyncio.sleep(1.1)  # older than a second: Prefect may be asked again
                    if apply is not None:
                        await apply_site(apply)
                answers.append(await client.post(
                    "/v1/alerts", json={"site": site, "key": key, "title": "Seam"}))
        return answers

    return asyncio.run(run())


def test_a_site_applied_after_the_cache_was_filled_is_accepted_at_once(site: str) -> None:
    later = f"{site}-later"
    answers = statuses((site, "k1"), (later, "k2"), pause_before=1, apply=later)
    assert [a.status_code for a in answers] == [202, 202]


def test_an_unknown_site_is_rejected_and_prefect_asked_at_most_once_a_second(
    site: str,
) -> None:
    answers = statuses(*[("nowhere", f"k{i}") for i in range(20)])
    assert [a.status_code for a in answers] == [404] * 20
    assert "unknown site 'nowhere'" in answers[0].json()["detail"][0]["msg"]
    assert len(sites_asked[0]) <= 2, "the first answer, and perhaps one more a second later"


def received_events(prefect_api_url: str, site: str, expected: int) -> list[dict[str, Any]]:
    """The ``axtrace.alert.received`` events the real server stored about ``site``."""
    query = {"filter": {"event": {"name": ["axtrace.alert.received"]},
                        "related": {"id": [f"axtrace.site.{site}"]},
                        "occurred": {"since": "2020-01-01T00:00:00Z"}}, "limit": 50}
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(found) < expected:
        found = httpx.post(f"{prefect_api_url}/events/filter", json=query,
                           timeout=30).json()["events"]
        time.sleep(0.5)
    time.sleep(1.0)  # and no more than expected arrive
    return list(httpx.post(f"{prefect_api_url}/events/filter", json=query,
                           timeout=30).json()["events"])


def test_each_accepted_alert_emits_one_received_event_about_it_and_its_site(
    site: str, prefect_api_url: str,
) -> None:
    answers = statuses(*[(site, f"k{i}") for i in range(3)], (site, "k0"))
    ids = [a.json()["id"] for a in answers[:3]]
    assert answers[3].json()["duplicate_delivery"] is True  # opens nothing: no event

    assert received_events(prefect_api_url, site, expected=0) == [], (
        "the request path emits nothing: the relay announces")
    asyncio.run(relay_all())
    runs = asyncio.run(relay_all())  # relayed again (a crash before the row was done): same ids
    found = received_events(prefect_api_url, site, expected=3)
    assert sorted(e["resource"]["prefect.resource.id"] for e in found) == sorted(
        f"axtrace.alert.{i}" for i in ids)
    for emitted in found:
        assert emitted["resource"]["axtrace.site"] == site
        run_id = runs[int(emitted["resource"]["axtrace.alert"])]
        assert [(r["prefect.resource.id"], r["prefect.resource.role"])
                for r in emitted["related"]] == [(f"axtrace.site.{site}", "site"),
                                                 (f"prefect.flow-run.{run_id}", "flow-run")]
        assert emitted["payload"] == {"actor": "intake:native", "source": "native"}


async def relay_all() -> dict[int, str]:
    """Relay every due outbox row as the dispatcher does (runs created, alerts announced);
    each alert's run, also for rows already relayed (their lease is lifted first)."""
    from prefect import get_client
    from sqlmodel import select

    from axtrace import dispatch
    from axtrace.ledger.models import Alert, OutboxItem, utcnow
    from axtrace.ledger.session import ledger_session

    with ledger_session() as session:
        for item in session.exec(select(OutboxItem)).all():
            item.done_at, item.due_at = None, utcnow()
            session.add(item)
        session.commit()
    async with get_client() as client:
        for item, alert in dispatch.claim(50):
            assert await dispatch.relay(client, item, alert)
    with ledger_session() as session:
        return {a.id or 0: str(a.flow_run_id) for a in session.exec(select(Alert)).all()}
