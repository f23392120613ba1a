"""Group commit on SQLite: deliveries that queue together are committed together, each
answered only after that commit, and every guarantee of one-by-one writing holds."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from axtrace.intake.service import Incoming, prepare
from axtrace.intake.writer import Writer
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for, make_engine, upgrade
from axtrace.ledger.models import Alert, Delivery
from axtrace.ledger.seal import ledger_key
from axtrace.reports.verify import check_seals, check_trace
from axtrace.settings import Settings, get_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade(url)
    yield get_settings()
    get_settings.cache_clear()


def incoming(settings: Settings, key: str) -> Incoming:
    raw = json.dumps({"site": "berlin-plant", "key": key, "title": "Seam"}).encode()
    return prepare(source="native", raw=raw, webhook_id=None, known_sites={"berlin-plant"},
                   settings=settings)


async def write_all(writer: Writer, items: list[Incoming]) -> list[Any]:
    return await asyncio.gather(*(writer.write(i) for i in items), return_exceptions=True)


def test_deliveries_that_queue_together_are_committed_together_and_all_accepted(
    settings: Settings,
) -> None:
    engine = engine_for(settings.ledger_url, settings.db_busy_timeout)
    commits: list[object] = []

    def on_commit(conn: object) -> None:
        commits.append(conn)

    event.listen(engine, "commit", on_commit)
    try:
        replies = asyncio.run(write_all(Writer(engine), [
            incoming(settings, f"k{i}") for i in range(50)]))
    finally:
        event.remove(engine, "commit", on_commit)
    assert [r.status for r in replies] == [202] * 50
    assert len(commits) < 50, "queued deliveries share a commit"
    with Session(engine) as session:
        alerts = session.exec(select(Alert)).all()
        assert len(alerts) == 50
        for alert in alerts:
            trace = repo.trace_of(session=session, alert_id=alert.id or 0)
            assert check_trace(alert, trace) == []
            assert check_seals(alert, trace, ledger_key() or b"") == []


def test_the_same_delivery_twice_in_one_batch_is_one_occurrence_answered_twice(
    settings: Settings,
) -> None:
    engine = engine_for(settings.ledger_url, settings.db_busy_timeout)
    same = incoming(settings, "twice")
    first, again = asyncio.run(write_all(Writer(engine), [same, same]))
    assert (first.status, again.status) == (202, 200)
    assert again.body == {**first.body, "duplicate_delivery": True}
    with Session(engine) as session:
        assert len(session.exec(select(Alert)).all()) == 1
        assert len(session.exec(select(Delivery)).all()) == 1


def test_a_locked_ledger_fails_every_delivery_of_the_batch_and_stores_none(
    settings: Settings,
) -> None:
    engine = make_engine(settings.ledger_url, busy_timeout=0.2)
    blocker = sqlite3.connect(settings.ledger_url.removeprefix("sqlite:///"),
                              isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        outcomes = asyncio.run(write_all(Writer(engine), [
            incoming(settings, f"locked-{i}") for i in range(5)]))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert all(isinstance(o, OperationalError) for o in outcomes), outcomes
    with Session(engine) as session:
        assert session.exec(select(Alert)).all() == []
    retried = asyncio.run(write_all(Writer(engine), [incoming(settings, "locked-0")]))
    assert retried[0].status == 202, "the sender's retry is accepted"


def test_the_wal_is_checkpointed_by_a_thread_of_its_own_not_after_the_writers_commit(
    settings: Settings, tmp_path: Path,
) -> None:
    """SQLite would checkpoint on the writer thread after the commit that crosses 1,000 WAL
    pages (an fsync holding the next batch); the writer's connections do not, and the
    checkpoint thread copies the WAL into the database file within a second or two."""
    engine = make_engine(settings.ledger_url, settings.db_busy_timeout)
    writer = Writer(engine)
    replies = asyncio.run(write_all(writer, [incoming(settings, f"k{i}") for i in range(20)]))
    assert [r.status for r in replies] == [202] * 20
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    database = Path(settings.ledger_url.removeprefix("sqlite:///"))
    copy = tmp_path / "main-file-only.db"  # what the database file holds without its WAL
    for _ in range(50):
        copy.write_bytes(database.read_bytes())
        with sqlite3.connect(copy) as alone:
            if alone.execute("SELECT count(*) FROM alert").fetchone()[0] == 20:
                break
        asyncio.run(asyncio.sleep(0.1))
    else:
        pytest.fail("the 20 alerts never reached the database file: nothing checkpointed")
    engine.dispose()


def test_writers_sharing_an_engine_share_one_checkpoint_thread(settings: Settings) -> None:
    def checkpointers() -> int:
        return sum(t.name == "axtrace-wal-checkpoint" for t in threading.enumerate())

    before = checkpointers()
    engine = make_engine(settings.ledger_url, settings.db_busy_timeout)
    for key in ("a", "b"):
        [reply] = asyncio.run(write_all(Writer(engine), [incoming(settings, key)]))
        assert reply.status == 202
    assert checkpointers() == before + 1
