"""The ledger: migrations own the schema, traces are append-only and hash-chained."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import update
from sqlmodel import Session, SQLModel, select

from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import AlertCreate, OutboxItem, Step, TraceEvent
from axtrace.reports.verify import check_trace


def new_alert(session: Session, **fields: object) -> int:
    alert = repo.create_alert(session=session, actor="test", alert=AlertCreate(
        site="berlin-plant", key="k1", title="Crack", **fields))  # type: ignore[arg-type]
    session.commit()
    assert alert.id is not None
    return alert.id


def test_migrations_create_exactly_the_schema_the_models_declare(ledger: str) -> None:
    with engine_for(ledger).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_a_new_alert_lands_with_its_received_step_and_an_outbox_row_together(
    ledger: str,
) -> None:
    with Session(engine_for(ledger)) as session:
        alert_id = new_alert(session)
        trace = repo.trace_of(session=session, alert_id=alert_id)
        outbox = session.exec(select(OutboxItem)).all()
    assert [(e.seq, e.step, e.actor) for e in trace] == [(1, "received", "test")]
    assert [o.alert_id for o in outbox] == [alert_id]


def test_steps_are_numbered_in_order_and_each_holds_its_predecessors_hash(ledger: str) -> None:
    with Session(engine_for(ledger)) as session:
        alert_id = new_alert(session)
        repo.append_step(session=session, alert_id=alert_id, step=Step.ASSIGNED, actor="a")
        repo.append_step(session=session, alert_id=alert_id, step=Step.NOTIFIED, actor="a",
                         detail={"level": 1})
        session.commit()
        trace = repo.trace_of(session=session, alert_id=alert_id)
    assert [e.seq for e in trace] == [1, 2, 3]
    assert trace[0].prev_hash == repo.GENESIS
    assert [e.prev_hash for e in trace[1:]] == [e.hash for e in trace[:-1]]
    assert repo.verify_chain(trace) is None


def test_an_edited_step_is_found_by_recomputing_the_chain(ledger: str) -> None:
    with Session(engine_for(ledger)) as session:
        alert_id = new_alert(session)
        repo.append_step(session=session, alert_id=alert_id, step=Step.ACKNOWLEDGED,
                         actor="ben")
        session.commit()
        session.exec(update(TraceEvent).where(TraceEvent.seq == 2)  # type: ignore[call-overload]
                     .values(actor="anna"))
        session.commit()
        session.expire_all()
        trace = repo.trace_of(session=session, alert_id=alert_id)
    assert repo.verify_chain(trace) == 2


def test_a_repeat_of_an_open_occurrence_cannot_open_a_second_one(ledger: str) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    with Session(engine_for(ledger)) as session:
        new_alert(session)
        with pytest.raises(IntegrityError):
            new_alert(session)


def test_alerts_list_newest_first_and_filter_by_site_and_status(ledger: str) -> None:
    with Session(engine_for(ledger)) as session:
        first = new_alert(session)
        repo.create_alert(session=session, actor="t", alert=AlertCreate(
            site="lyon-store", key="k2", title="Warm"))
        session.commit()
        listed = repo.list_alerts(session=session)
        only = repo.list_alerts(session=session, site="berlin-plant", status="open")
    assert [a.site for a in listed] == ["lyon-store", "berlin-plant"]
    assert [a.id for a in only] == [first]


def test_a_truncated_trace_is_found_from_the_length_and_head_kept_on_the_alert(
    ledger: str,
) -> None:
    from sqlalchemy import delete

    with Session(engine_for(ledger)) as session:
        alert_id = new_alert(session)
        repo.append_step(session=session, alert_id=alert_id, step=Step.ASSIGNED, actor="a")
        session.commit()
        alert = repo.get_alert(session=session, alert_id=alert_id)
        assert check_trace(alert, repo.trace_of(session=session, alert_id=alert_id)) == []
        session.exec(delete(TraceEvent).where(TraceEvent.seq == 2))  # type: ignore[call-overload]
        session.commit()
        session.expire_all()
        alert = repo.get_alert(session=session, alert_id=alert_id)
        problems = check_trace(alert, repo.trace_of(session=session, alert_id=alert_id))
    assert [p.found for p in problems] == ["1 steps (truncated or cut off)"]


def test_upgrading_an_older_ledger_backfills_each_alerts_trace_length_and_head(
    tmp_path: object,
) -> None:
    from alembic import command
    from sqlalchemy import text

    from axtrace.ledger.db import alembic_config, make_engine

    url = f"sqlite:///{tmp_path}/old.db"
    command.upgrade(alembic_config(url), "0002")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO alert (id, site, key, source, severity, title, labels, received_at, "
            "status, repeat_count, level, notified_level, wait_seq) VALUES (1, 's', 'k', "
            "'native', 'high', 't', '{}', '2026-01-01 00:00:00', 'open', 1, 0, 0, 0)"))
        for seq, digest in ((1, "a" * 64), (2, "b" * 64)):
            conn.execute(text(
                "INSERT INTO trace_event (alert_id, seq, step, actor, at, detail, prev_hash, "
                "hash) VALUES (1, :seq, 'received', 'x', '2026-01-01 00:00:00', '{}', '0', "
                ":digest)"), {"seq": seq, "digest": digest})
    command.upgrade(alembic_config(url), "head")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT trace_len, trace_head FROM alert")).one()
    assert tuple(row) == (2, "b" * 64)


def test_the_intakes_core_insert_and_the_orm_both_leave_alerts_their_verify_accepts(
    ledger: str,
) -> None:
    from axtrace.ledger.models import utcnow
    from axtrace.reports.verify import verify_ledger

    engine = engine_for(ledger)
    with engine.begin() as conn:
        repo.insert_alert(conn=conn, alert=AlertCreate(site="lyon-store", key="k", title="Warm"),
                          actor="intake:native", at=utcnow())
    with Session(engine) as session:
        new_alert(session)
        alert = repo.get_alert(session=session, alert_id=1)
        alert.status, alert.acknowledged_by = "acknowledged", "ben"
        repo.append_step(session=session, alert_id=1, step=Step.ACKNOWLEDGED, actor="ben")
        session.commit()
        assert verify_ledger(session) == []


def test_without_a_given_key_the_first_process_makes_one_only_its_user_may_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four processes start at once on a home without a key: one file, one key, mode 0600."""
    import subprocess
    import sys

    monkeypatch.delenv("AXTRACE_LEDGER_KEY", raising=False)
    monkeypatch.setenv("AXTRACE_HOME", str(tmp_path / "home"))
    code = "from axtrace.ledger.seal import ledger_key; print(ledger_key().decode())"
    starts = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    keys = {p.communicate(timeout=60)[0].strip() for p in starts}
    path = tmp_path / "home" / "ledger.key"
    assert keys == {path.read_text().strip()}
    assert len(keys.pop()) == 64
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_given_key_is_used_and_no_key_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from axtrace.ledger.seal import ledger_key
    from axtrace.settings import get_settings

    monkeypatch.setenv("AXTRACE_LEDGER_KEY", "kept in a vault")
    monkeypatch.setenv("AXTRACE_HOME", str(tmp_path))
    get_settings.cache_clear()
    assert ledger_key() == b"kept in a vault"
    assert not (tmp_path / "ledger.key").exists()
    get_settings.cache_clear()


def test_a_ledger_that_had_a_token_before_0007_keeps_tokens_required(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    from axtrace import tokens
    from axtrace.ledger.db import alembic_config, upgrade

    had, never = (f"sqlite:///{tmp_path / name}.db" for name in ("had", "never"))
    for url in (had, never):
        command.upgrade(alembic_config(url), "0005")
    with engine_for(had).begin() as conn:
        conn.execute(text("INSERT INTO responder_token (name, token_sha256, created_at, "
                          "revoked_at) VALUES ('alice', 'x', '2026-01-01', '2026-01-02')"))
    for url in (had, never):
        upgrade(url)
    with Session(engine_for(had)) as session:
        assert tokens.required(session), "even though its only token was revoked"
        assert tokens.active(session) == []
    with Session(engine_for(never)) as session:
        assert not tokens.required(session)
    command.downgrade(alembic_config(had), "0005")
