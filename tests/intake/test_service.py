"""The intake's hot path against a real SQLite ledger: what one delivery costs in statements,
and that the fast path keeps every guarantee of the slow one (the trace chain, the outbox
row, idempotency, repeat counting, recorded rejections)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from axtrace.intake.service import accept
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for, upgrade
from axtrace.ledger.models import Alert, Delivery, OutboxItem, TraceEvent
from axtrace.ledger.seal import ledger_key
from axtrace.reports.verify import check_seals, check_trace
from axtrace.settings import Settings, get_settings

SITES = {"berlin-plant"}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings of this process pointing at a fresh, migrated SQLite ledger."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade(url)
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def statements(settings: Settings) -> Iterator[list[str]]:
    """The SQL statements the ledger's engine runs while the test does."""
    seen: list[str] = []
    engine = engine_for(settings.ledger_url, settings.db_busy_timeout)

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def deliver(settings: Settings, body: dict[str, Any], **kw: Any) -> Any:
    return accept(source="native", raw=json.dumps(body).encode(), webhook_id=None,
                  known_sites=kw.pop("known_sites", SITES), settings=settings, **kw)


def ledger(settings: Settings) -> Session:
    return Session(engine_for(settings.ledger_url, settings.db_busy_timeout))


def test_a_new_alert_is_stored_in_eight_statements_at_most(
    settings: Settings, statements: list[str],
) -> None:
    reply = deliver(settings, {"site": "berlin-plant", "key": "k1", "title": "Seam"})
    assert reply.status == 202
    assert len(statements) <= 8, "\n".join(statements)


def test_a_repeat_is_counted_in_four_statements_at_most(
    settings: Settings, statements: list[str],
) -> None:
    deliver(settings, {"site": "berlin-plant", "key": "k1", "title": "Seam"})
    statements.clear()
    reply = deliver(settings, {"site": "berlin-plant", "key": "k1", "title": "Seam again"})
    assert reply.body["alerts"][0]["repeat_count"] == 2
    assert len(statements) <= 4, "\n".join(statements)


def test_the_fast_path_writes_the_alert_its_chained_received_step_and_its_outbox_row(
    settings: Settings,
) -> None:
    reply = deliver(settings, {"site": "berlin-plant", "key": "k1", "title": "Seam",
                               "labels": {"line": "3"}, "severity": "critical"})
    alert_id = reply.body["id"]
    assert reply.body["alerts"] == [
        {"id": alert_id, "site": "berlin-plant", "key": "k1", "status": "new"}]
    with ledger(settings) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        assert (alert.status, alert.open_key, alert.labels, alert.repeat_count) == (
            "open", "berlin-plant/native/k1", {"line": "3"}, 1)
        trace = repo.trace_of(session=session, alert_id=alert_id)
        assert [(e.seq, e.step, e.actor) for e in trace] == [(1, "received", "intake:native")]
        assert trace[0].detail == {"source": "native", "key": "k1", "severity": "critical",
                                   "title": "Seam"}
        assert check_trace(alert, trace) == [], "the hash chain holds"
        assert check_seals(alert, trace, ledger_key() or b"") == [], "and its seals"
        outbox = session.exec(select(OutboxItem).where(OutboxItem.alert_id == alert_id)).all()
        assert [o.topic for o in outbox] == ["dispatch"]
        delivery = session.exec(select(Delivery)).one()
        assert delivery.id == reply.body["delivery"]
        assert delivery.status == "accepted"


def test_a_byte_identical_delivery_gets_the_first_answer_and_writes_nothing(
    settings: Settings,
) -> None:
    body = {"site": "berlin-plant", "key": "k1", "title": "Seam"}
    first = deliver(settings, body)
    again = deliver(settings, body)
    assert again.status == 200
    assert again.body == {**first.body, "duplicate_delivery": True}
    with ledger(settings) as session:
        assert len(session.exec(select(Delivery)).all()) == 1
        assert len(session.exec(select(TraceEvent)).all()) == 1
