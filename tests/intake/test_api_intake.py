"""The intake's HTTP route in process (the app, a real SQLite ledger, Prefect faked where it
would be asked which sites exist): site lookups off the request path, events per alert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.testing.fixtures import (  # noqa: F401  (pytest finds fixtures by name)
    asserting_events_worker,
)

from axtrace import api
from axtrace.ledger.db import upgrade
from axtrace.settings import get_settings


@pytest.fixture
def deployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    asserting_events_worker: Any,  # noqa: F811  (events go to Prefect's test client)
) -> Iterator[set[str]]:
    """The sites Prefect would name (change the set to 'apply' a site), and a fresh ledger."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    monkeypatch.delenv("AXTRACE_KNOWN_SITES", raising=False)
    get_settings.cache_clear()
    upgrade(url)
    sites = {"berlin-plant"}
    asked: list[float] = []

    async def deployed_sites() -> set[str]:
        asked.append(time.monotonic())
        return set(sites)

    monkeypatch.setattr(api, "_deployed_sites", deployed_sites)
    sites_asked.clear()
    sites_asked.append(asked)
    yield sites
    get_settings.cache_clear()


sites_asked: list[list[float]] = []


def statuses(*posts: tuple[str, str], pause_before: int | None = None,
             apply: tuple[set[str], str] | None = None) -> list[Any]:
    """POST native alerts (site, key) to a fresh app in process, one after another; before
    the post numbered ``pause_before``, wait a little over a second and apply a site."""

    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=api.create_app(background=False))
        answers = []
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            for number, (site, key) in enumerate(posts):
                if number == pause_before:
                    await asyncio.sleep(1.1)  # older than a second: Prefect may be asked again
                    if apply is not None:
                        apply[0].add(apply[1])
                answers.append(await client.post(
                    "/v1/alerts", json={"site": site, "key": key, "title": "Seam"}))
        return answers

    return asyncio.run(run())


def test_a_site_applied_after_the_cache_was_filled_is_accepted_at_once(
    deployed: set[str],
) -> None:
    answers = statuses(("berlin-plant", "k1"), ("lyon-plant", "k2"), pause_before=1,
                       apply=(deployed, "lyon-plant"))
    assert [a.status_code for a in answers] == [202, 202]


def test_an_unknown_site_is_rejected_and_prefect_asked_at_most_once_a_second(
    deployed: set[str],
) -> None:
    answers = statuses(*[("nowhere", f"k{i}") for i in range(20)])
    assert [a.status_code for a in answers] == [404] * 20
    assert "unknown site 'nowhere'" in answers[0].json()["detail"][0]["msg"]
    assert len(sites_asked[0]) <= 2, "the first answer, and perhaps one more a second later"


def test_each_accepted_alert_emits_one_received_event_about_it_and_its_site(
    deployed: set[str], asserting_events_worker: Any,  # noqa: F811
) -> None:
    answers = statuses(*[("berlin-plant", f"k{i}") for i in range(3)], ("berlin-plant", "k0"))
    ids = [a.json()["id"] for a in answers[:3]]
    assert answers[3].json()["duplicate_delivery"] is True  # opens nothing: no event
    deadline = time.monotonic() + 20
    found: list[Any] = []
    while time.monotonic() < deadline and len(found) < 3:
        asserting_events_worker.drain()
        client = getattr(asserting_events_worker, "_client", None)
        found = [e for e in (client.events if client else [])
                 if e.event == "axtrace.alert.received"]
        time.sleep(0.1)
    time.sleep(0.5)
    assert sorted(e.resource.id for e in found) == sorted(f"axtrace.alert.{i}" for i in ids)
    for emitted in found:
        assert emitted.resource["axtrace.site"] == "berlin-plant"
        assert {r.id: r.role for r in emitted.related} == {"axtrace.site.berlin-plant": "site"}
        assert emitted.payload == {"actor": "intake:native", "source": "native"}
