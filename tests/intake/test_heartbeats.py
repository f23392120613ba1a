"""The dead-man switch on a real ledger (SQLite, migrated): a silence raises one alert through
the intake's own path however often it is checked, the next heartbeat resolves it at the
source, and Alertmanager's Watchdog is a heartbeat, not an alert. Time is given, not slept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from axtrace.heartbeats import Silence, Stale, _raise, beat, raise_silences
from axtrace.intake.service import Reply, accept
from axtrace.ledger.db import engine_for, upgrade
from axtrace.ledger.models import Alert, Delivery, Heartbeat, OutboxItem, TraceEvent
from axtrace.settings import Settings, get_settings
from tests.intake.support import load

SITE = "berlin-plant"
T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=30)
KNOWN = {SITE: {"seam-vision": WINDOW}}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    monkeypatch.delenv("AXTRACE_SOURCES", raising=False)
    get_settings.cache_clear()
    upgrade(url)
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return engine_for(settings.ledger_url)


def check(engine: Engine, at: datetime) -> list[Any]:
    with engine.begin() as conn:
        return raise_silences(conn, KNOWN, at)


def heard(engine: Engine, at: datetime, detector: str = "seam-vision") -> dict[str, Any]:
    with engine.begin() as conn:
        return beat(conn, site=SITE, detector=detector, at=at, via="api")


def rows(engine: Engine, model: Any, *where: Any) -> list[Any]:
    with Session(engine) as session:
        return list(session.exec(select(model).where(*where).order_by(col(model.id))).all())


def silences(engine: Engine) -> list[Alert]:
    return rows(engine, Alert, col(Alert.source) == "heartbeat")


def test_a_newly_watched_detector_is_watched_from_the_first_check(engine: Engine) -> None:
    assert check(engine, T0) == []
    assert check(engine, T0 + WINDOW) == []

    [row] = rows(engine, Heartbeat)
    assert (row.site, row.detector, row.watched_since, row.last_seen_at, row.beats) == (
        SITE, "seam-vision", T0, None, 0)


def test_a_silence_raises_one_alert_however_many_checks_see_it(engine: Engine) -> None:
    check(engine, T0)
    raised = [check(engine, T0 + WINDOW + timedelta(seconds=s)) for s in range(1, 40)]

    assert [len(r) for r in raised] == [1] + [0] * 38
    [alert] = silences(engine)
    assert (alert.site, alert.detector, alert.title, alert.status, alert.severity) == (
        SITE, "seam-vision", "detector seam-vision silent at berlin-plant", "open", "high")
    assert raised[0][0] == alert.id
    [received] = rows(engine, TraceEvent, col(TraceEvent.alert_id) == alert.id)
    assert (received.step, received.actor, received.detail["source"]) == (
        "received", "intake:heartbeat", "heartbeat")
    [dispatch] = rows(engine, OutboxItem, col(OutboxItem.alert_id) == alert.id)
    assert dispatch.topic == "dispatch"  # the dispatcher starts its respond-to-alert run
    assert rows(engine, Heartbeat)[0].silent_alert_id == alert.id


def test_the_next_heartbeat_resolves_the_silence_at_the_source(engine: Engine) -> None:
    check(engine, T0)
    check(engine, T0 + WINDOW * 2)
    [alert] = silences(engine)

    answer = heard(engine, T0 + WINDOW * 3)

    assert answer == {"site": SITE, "detector": "seam-vision", "status": "heartbeat",
                      "resolving": alert.id}
    [alert] = silences(engine)
    assert alert.source_resolved_at == T0 + WINDOW * 3
    assert [o.topic for o in rows(engine, OutboxItem, col(OutboxItem.alert_id) == alert.id)] \
        == ["dispatch", "wake"]  # the waiting run is woken and resolves it
    [row] = rows(engine, Heartbeat)
    assert (row.last_seen_at, row.beats, row.last_via, row.silent_alert_id) == (
        T0 + WINDOW * 3, 1, "api", None)
    assert heard(engine, T0 + WINDOW * 3 + timedelta(seconds=1))["resolving"] is None


def test_a_new_silence_after_a_heartbeat_is_a_new_alert(engine: Engine) -> None:
    check(engine, T0)
    check(engine, T0 + WINDOW * 2)
    heard(engine, T0 + WINDOW * 3)
    assert check(engine, T0 + WINDOW * 4 - timedelta(seconds=1)) == []
    assert len(check(engine, T0 + WINDOW * 4 + timedelta(seconds=1))) == 1

    first, second = silences(engine)
    assert first.key != second.key
    assert second.starts_at == T0 + WINDOW * 3


def test_silence_counts_from_the_last_heartbeat_not_from_when_watched(engine: Engine) -> None:
    heard(engine, T0 + WINDOW)  # heard before any check watched it

    assert check(engine, T0 + WINDOW * 2) == []
    assert len(check(engine, T0 + WINDOW * 2 + timedelta(seconds=1))) == 1


def test_a_heartbeat_that_came_meanwhile_stops_a_silence_being_raised(engine: Engine) -> None:
    check(engine, T0)
    heard(engine, T0 + timedelta(seconds=5))  # after the check read the row, say
    stale = Silence(SITE, "seam-vision", T0, WINDOW, timedelta(seconds=1))
    [row] = rows(engine, Heartbeat)

    with pytest.raises(Stale), engine.begin() as conn:
        _raise(conn, row.id, stale, T0 + WINDOW * 2)

    assert silences(engine) == []  # rolled back with the rest of its transaction


def test_a_silence_closed_by_a_person_is_not_resolved_again(engine: Engine) -> None:
    check(engine, T0)
    check(engine, T0 + WINDOW * 2)
    with Session(engine) as session:
        alert = session.exec(select(Alert)).one()
        alert.open_key, alert.status = None, "closed"
        session.add(alert)
        session.commit()

    assert heard(engine, T0 + WINDOW * 3)["resolving"] is None
    assert silences(engine)[0].source_resolved_at is None


# --------------------------------------------------------------------------- Watchdog


def deliver(settings: Settings, body: Any) -> Reply:
    return accept(source="alertmanager", raw=json.dumps(body).encode(), webhook_id=None,
                  known_sites={SITE}, settings=settings)


def test_the_watchdog_is_a_heartbeat_of_its_detector_label_else_of_alertmanager(
    settings: Settings, engine: Engine,
) -> None:
    reply = deliver(settings, load("alertmanager_watchdog.json"))

    assert reply.status == 202
    assert [(a["detector"], a["status"]) for a in reply.body["alerts"]] == [
        ("alertmanager", "heartbeat"), ("seam-vision", "heartbeat")]
    assert rows(engine, Alert) == []
    assert rows(engine, OutboxItem) == [], "nothing for the relay"
    assert {(r.detector, r.beats, r.last_via) for r in rows(engine, Heartbeat)} == {
        ("alertmanager", 1, "alertmanager"), ("seam-vision", 1, "alertmanager")}
    [delivery] = rows(engine, Delivery)
    assert delivery.status == "accepted"


def test_the_watchdog_resolves_the_silence_of_its_detector(
    settings: Settings, engine: Engine,
) -> None:
    check(engine, T0)
    check(engine, T0 + WINDOW * 2)
    body = load("alertmanager_watchdog.json")
    body["alerts"] = body["alerts"][1:]  # seam-vision's own Watchdog

    reply = deliver(settings, body)

    [alert] = silences(engine)
    assert reply.body["alerts"][0]["resolving"] == alert.id
    assert alert.source_resolved_at is not None


def test_a_resolved_watchdog_is_no_heartbeat(settings: Settings, engine: Engine) -> None:
    body = load("alertmanager_watchdog.json")
    body["status"] = "resolved"
    for item in body["alerts"]:
        item["status"] = "resolved"

    reply = deliver(settings, body)

    assert reply.status == 202
    assert {a["status"] for a in reply.body["alerts"]} == {"ignored"}
    assert rows(engine, Heartbeat) == []


def test_a_watchdog_for_an_unknown_site_is_404_naming_the_site(settings: Settings) -> None:
    body = load("alertmanager_watchdog.json")
    body["alerts"][0]["labels"]["site"] = "paris"

    reply = deliver(settings, body)

    assert (reply.status, reply.field) == (404, "alerts.0.site")
