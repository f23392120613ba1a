"""Resolutions from sources are bound to them: a resolve closes only an alert its own source
opened, at its own site when it names one; one that matches nothing is refused (native) or
kept for its own source's later firing (third-party senders), never for anyone else's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from axtrace.intake.registry import RESOLVES_EARLY, SOURCES, parse
from axtrace.intake.service import (
    AmbiguousResolve,
    NothingOpen,
    Reply,
    accept,
    resolve_problem,
)
from axtrace.ledger.db import engine_for, upgrade
from axtrace.ledger.models import Alert, Delivery, OutboxItem
from axtrace.settings import Settings, get_settings
from tests.intake.support import CONFIG, ROUTING_KEY, load, payload_names, source_of

BERLIN, HAMBURG = "berlin-plant", "hamburg-plant"
SITES = {BERLIN, HAMBURG, "lyon-plant"}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A fresh, migrated SQLite ledger; PagerDuty's example routing key maps to Berlin."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    monkeypatch.delenv("AXTRACE_SOURCES", raising=False)
    get_settings.cache_clear()
    upgrade(url)
    yield get_settings()
    get_settings.cache_clear()


def deliver(settings: Settings, source: str, body: Any) -> Reply:
    return accept(source=source, raw=json.dumps(body).encode(), webhook_id=None,
                  known_sites=SITES, settings=settings)


def native(site: str | None, key: str, action: str = "fire", title: str = "Seam") -> Reply:
    body = {"key": key, "title": title, "action": action} | ({"site": site} if site else {})
    return deliver(get_settings(), "native", body)


def alert(settings: Settings, alert_id: int) -> Alert:
    with Session(engine_for(settings.ledger_url)) as session:
        found = session.get(Alert, alert_id)
        assert found is not None
        return found


def wakes(settings: Settings, alert_id: int) -> int:
    """Outbox rows that would wake this alert's run to close it."""
    with Session(engine_for(settings.ledger_url)) as session:
        return len(session.exec(select(OutboxItem).where(
            OutboxItem.alert_id == alert_id, OutboxItem.topic == "wake")).all())


def last_delivery(settings: Settings) -> Delivery:
    with Session(engine_for(settings.ledger_url)) as session:
        return session.exec(select(Delivery).order_by(col(Delivery.id).desc())).first()


RESOLVE_EXAMPLES = [
    name for name in payload_names()
    if any(e.action == "resolve" for e in parse(source_of(name), load(name), CONFIG))]


def test_every_source_that_can_resolve_has_an_example_here() -> None:
    sources = {source_of(name) for name in RESOLVE_EXAMPLES}
    assert sources == {"native", "alertmanager", "grafana", "pagerduty", "azure-monitor"}
    assert set(SOURCES) - sources == {"opsgenie"}, "Opsgenie's create-alert body only fires"


@pytest.mark.parametrize("name", RESOLVE_EXAMPLES)
def test_a_resolve_from_any_source_never_closes_another_sources_alert_with_its_key(
    settings: Settings, name: str,
) -> None:
    source = source_of(name)
    (envelope,) = [e for e in parse(source, load(name), CONFIG) if e.action == "resolve"]
    other = "alertmanager" if source == "native" else "native"
    fired = [{"status": "firing", "fingerprint": envelope.key, "startsAt": "2025-05-06T08:00:00Z",
              "labels": {"alertname": "Other", "site": BERLIN}}]
    victim = (native(BERLIN, envelope.key) if other == "native"
              else deliver(settings, other, {"alerts": fired}))
    assert victim.status == 202
    reply = deliver(settings, source, load(name))
    assert reply.status in (202, 404), reply.body
    victim_alert = alert(settings, victim.body["id"])
    assert (victim_alert.status, victim_alert.source_resolved_at) == ("open", None)
    assert wakes(settings, victim_alert.id or 0) == 0


def test_a_native_resolve_for_another_sources_alert_is_404_naming_key_and_recorded(
    settings: Settings,
) -> None:
    fired = deliver(settings, "alertmanager", load("alertmanager_firing.json"))
    (target, *_) = fired.body["alerts"]
    reply = native(None, target["key"], "resolve")
    assert (reply.status, reply.field) == (404, "key")
    assert "no open alert of source native" in reply.body["error"]
    recorded = last_delivery(settings)
    assert (recorded.status, recorded.http_status, recorded.field) == ("rejected", 404, "key")
    assert alert(settings, target["id"]).source_resolved_at is None


def test_a_resolve_naming_a_site_closes_only_the_alert_at_that_site(settings: Settings) -> None:
    berlin, hamburg = native(BERLIN, "seam-3").body["id"], native(HAMBURG, "seam-3").body["id"]
    reply = native(HAMBURG, "seam-3", "resolve")
    assert reply.status == 202
    assert reply.body["alerts"][0] | {"id": hamburg} == {
        "id": hamburg, "site": HAMBURG, "key": "seam-3", "status": "resolving"}
    assert alert(settings, hamburg).source_resolved_at is not None
    assert alert(settings, berlin).source_resolved_at is None


def test_a_resolve_naming_no_site_for_a_key_open_at_two_sites_is_409_and_closes_neither(
    settings: Settings,
) -> None:
    ids = [native(BERLIN, "seam-3").body["id"], native(HAMBURG, "seam-3").body["id"]]
    reply = native(None, "seam-3", "resolve")
    assert (reply.status, reply.field) == (409, "site")
    assert [alert(settings, i).source_resolved_at for i in ids] == [None, None]
    assert last_delivery(settings).http_status == 409


def test_a_resolve_naming_no_site_closes_the_one_alert_its_source_has_open(
    settings: Settings,
) -> None:
    alert_id = native(BERLIN, "seam-3").body["id"]
    assert native(None, "seam-3", "resolve").body["alerts"][0]["status"] == "resolving"
    assert alert(settings, alert_id).source_resolved_at is not None


def test_a_native_resolve_at_a_site_where_the_key_is_not_open_is_404(settings: Settings) -> None:
    native(BERLIN, "seam-3")
    reply = native(HAMBURG, "seam-3", "resolve")
    assert (reply.status, reply.field) == (404, "key")
    assert "at site 'hamburg-plant'" in reply.body["error"]


def test_a_native_resolve_repeated_after_its_alert_closed_is_still_accepted(
    settings: Settings,
) -> None:
    alert_id = native(BERLIN, "seam-3").body["id"]
    with Session(engine_for(settings.ledger_url)) as session:
        row = session.get(Alert, alert_id)
        assert row is not None
        row.status, row.open_key = "closed", None
        session.add(row)
        session.commit()
    reply = native(BERLIN, "seam-3", "resolve", title="Seam, again")
    assert reply.status == 202
    assert reply.body["alerts"][0]["reason"] == "occurrence already closed"


def test_a_firing_and_its_resolve_in_one_native_batch_are_both_taken(settings: Settings) -> None:
    reply = deliver(settings, "native", {"alerts": [
        {"site": BERLIN, "key": "seam-3", "title": "Seam"},
        {"key": "seam-3", "title": "Seam", "action": "resolve"}]})
    assert reply.status == 202, reply.body
    assert [a["status"] for a in reply.body["alerts"]] == ["new", "resolving"]


def test_an_early_resolve_is_kept_only_for_a_later_firing_of_its_own_source(
    settings: Settings,
) -> None:
    key = "srv01/mysql/replication-lag"
    early = deliver(settings, "pagerduty", {"routing_key": ROUTING_KEY, "dedup_key": key,
                                            "event_action": "resolve"})
    assert early.status == 202
    assert "kept" in early.body["alerts"][0]["reason"]
    other = native(BERLIN, key)
    assert alert(settings, other.body["id"]).source_resolved_at is None
    own = deliver(settings, "pagerduty", {
        "routing_key": ROUTING_KEY, "dedup_key": key, "event_action": "trigger",
        "payload": {"summary": "Lag", "source": "srv01", "severity": "error",
                    "custom_details": {"site": HAMBURG}}})
    assert alert(settings, own.body["id"]).source_resolved_at is not None


def test_an_early_resolve_naming_a_site_is_kept_only_for_a_firing_at_that_site(
    settings: Settings,
) -> None:
    resolved = load("alertmanager_resolved.json")
    assert deliver(settings, "alertmanager", resolved).status == 202  # kept, for Berlin
    firing = json.loads(json.dumps(resolved).replace('"resolved"', '"firing"'))
    for item in firing["alerts"]:
        item["labels"]["site"] = HAMBURG
        item["endsAt"] = "0001-01-01T00:00:00Z"
    firing["commonLabels"]["site"] = HAMBURG
    hamburg = deliver(settings, "alertmanager", firing)
    assert hamburg.body["alerts"][0]["status"] == "new"
    assert alert(settings, hamburg.body["id"]).source_resolved_at is None
    firing_berlin = json.loads(json.dumps(firing).replace(HAMBURG, BERLIN))
    berlin = deliver(settings, "alertmanager", firing_berlin)
    assert alert(settings, berlin.body["id"]).source_resolved_at is not None


def decide(source: str = "native", site: str | None = None, open_sites: set[str] | None = None,
           closed_before: bool = False) -> Exception | None:
    return resolve_problem(source=source, site=site, open_sites=open_sites or set(),
                           closed_before=closed_before, key_field="key", site_field="site")


def test_the_resolve_decision_in_every_case() -> None:
    assert decide(open_sites={BERLIN}) is None
    assert decide(site=BERLIN, open_sites={BERLIN}) is None
    assert decide(closed_before=True) is None
    assert isinstance(decide(), NothingOpen)
    assert isinstance(decide(site=BERLIN), NothingOpen)
    assert isinstance(decide(open_sites={BERLIN, HAMBURG}), AmbiguousResolve)
    assert isinstance(decide("pagerduty", open_sites={BERLIN, HAMBURG}), AmbiguousResolve)
    for source in RESOLVES_EARLY:
        assert decide(source) is None, "kept for its firing"
        assert decide(source, site=BERLIN) is None
    refusal = decide(site=HAMBURG)
    assert refusal is not None
    assert (refusal.status_code, refusal.field) == (404, "key")  # type: ignore[attr-defined]
