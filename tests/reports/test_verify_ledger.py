"""``verify --ledger``: every alert whose trace was edited or truncated is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, update
from sqlmodel import Session, col

from axtrace.ledger import repo
from axtrace.ledger.db import alembic_config, make_engine, upgrade
from axtrace.ledger.models import Alert, Delivery, OutboxItem, TraceEvent
from axtrace.reports.verify import verify_ledger
from axtrace.settings import get_settings
from tests.reports.builder import NOW, T0, Ledger


@pytest.fixture
def clean(ledger: Ledger) -> Ledger:
    """Alerts 1-3: closed at level 1, closed after escalating, ignored and still open."""
    ledger.alert("alpha", ack=60, resolve=600, refusals=1)
    ledger.alert("alpha", escalations=1, ack=400, resolve=900)
    ledger.alert("beta", escalations=1, ignored=True)
    return ledger


def test_an_untouched_ledger_has_no_findings(session: Session, clean: Ledger) -> None:
    assert verify_ledger(session) == []


def test_a_trace_missing_a_step_the_alert_went_through_is_named(
    session: Session, ledger: Ledger,
) -> None:
    ledger.alert("alpha", ack=60, resolve=600,
                 steps=["received", "assigned", "acknowledged", "resolved", "closed"])
    [finding] = verify_ledger(session)
    assert finding.found == "missing notified (truncated?)"


def test_an_edited_step_breaks_the_chain_at_its_seq(session: Session, clean: Ledger) -> None:
    session.exec(update(TraceEvent).where(col(TraceEvent.alert_id) == 1, col(TraceEvent.seq) == 4)
                 .values(detail={"late_by_s": None, "level": 1, "note": "edited"}))
    session.commit()
    [finding] = verify_ledger(session)
    assert (finding.site, finding.what) == ("alpha", "alert 1 trace")
    assert finding.expected == "hash chain intact"
    assert finding.found == "edited, removed or inserted step at seq 4"


def test_a_removed_middle_step_breaks_the_chain(session: Session, clean: Ledger) -> None:
    session.exec(delete(TraceEvent).where(col(TraceEvent.alert_id) == 2, col(TraceEvent.seq) == 4))
    session.commit()
    found = verify_ledger(session)
    assert [(f.what, f.found) for f in found] == [
        ("alert 2 trace", "edited, removed or inserted step at seq 5"),
        ("alert 2 trace", "7 steps (truncated or cut off)"),
        ("alert 2 trace", "missing escalated (truncated?)")]


def test_a_truncated_tail_leaves_the_chain_whole_but_misses_a_step_the_state_implies(
    session: Session, clean: Ledger,
) -> None:
    session.exec(delete(TraceEvent).where(col(TraceEvent.alert_id) == 1, col(TraceEvent.seq) == 7))
    session.commit()
    cut, missing = verify_ledger(session)
    assert cut.what == missing.what == "alert 1 trace"
    assert cut.found == "6 steps (truncated or cut off)"
    assert missing.expected == "steps for status closed"
    assert missing.found == "missing closed (truncated?)"


def test_an_alert_without_any_trace_is_named(session: Session, ledger: Ledger) -> None:
    alert_id = ledger.alert("alpha", ack=60)
    session.exec(delete(TraceEvent).where(col(TraceEvent.alert_id) == alert_id))
    session.commit()
    cut, missing = verify_ledger(session)
    assert cut.found == "0 steps (truncated or cut off)"
    assert "missing acknowledged, assigned, notified, received" in missing.found


# ------------------------------------------------------------------ keyed seals (issue 14.8)


def test_a_step_rewritten_with_the_chain_recomputed_is_found_by_the_trace_seal(
    session: Session, clean: Ledger,
) -> None:
    """What a database writer can do without the key: edit a step, recompute every hash after
    it and the alert's head. The unkeyed chain holds again; the keyed seal does not."""
    events = list(repo.trace_of(session=session, alert_id=1))
    events[3].detail = {**events[3].detail, "note": "it was never late"}
    prev = events[2].hash
    for event in events[3:]:
        event.prev_hash, event.hash = prev, repo.event_hash(
            prev_hash=prev, alert_id=1, seq=event.seq, step=event.step, actor=event.actor,
            at=event.at, detail=event.detail)
        session.exec(update(TraceEvent).where(col(TraceEvent.id) == event.id).values(
            detail=event.detail, prev_hash=event.prev_hash, hash=event.hash))
        prev = event.hash
    session.exec(update(Alert).where(col(Alert.id) == 1).values(trace_head=prev))
    session.commit()
    [finding] = verify_ledger(session)
    assert (finding.site, finding.what, finding.expected) == (
        "alpha", "alert 1 seal", "trace as sealed")
    assert finding.found.startswith("trace rewritten without the ledger key")


def test_an_outcome_changed_in_the_database_is_named_with_what_the_trace_says(
    session: Session, clean: Ledger,
) -> None:
    session.exec(update(Alert).where(col(Alert.id) == 1).values(outcome="false_positive"))
    session.commit()
    [finding] = verify_ledger(session)
    assert (finding.what, finding.expected) == ("alert 1 seal", "columns as sealed")
    assert "outcome is 'false_positive' but its trace says 'fixed'" in finding.found


def test_a_resolver_changed_in_the_database_is_named(session: Session, clean: Ledger) -> None:
    session.exec(update(Alert).where(col(Alert.id) == 2).values(resolved_by="mallory"))
    session.commit()
    [finding] = verify_ledger(session)
    assert finding.what == "alert 2 seal"
    assert "resolved_by is 'mallory' but its trace says 'test'" in finding.found


def test_a_deadline_moved_in_the_database_breaks_the_state_seal(
    session: Session, clean: Ledger,
) -> None:
    session.exec(update(Alert).where(col(Alert.id) == 3).values(ack_deadline=NOW))
    session.commit()
    [finding] = verify_ledger(session)
    assert (finding.what, finding.expected) == ("alert 3 seal", "columns as sealed")
    assert "one of site, source, key" in finding.found


def test_a_removed_seal_is_named(session: Session, clean: Ledger) -> None:
    session.exec(update(Alert).where(col(Alert.id) == 2).values(trace_seal=None))
    session.commit()
    [finding] = verify_ledger(session)
    assert (finding.what, finding.found) == ("alert 2 seal", "no seal")


def test_an_alert_deleted_with_its_trace_is_named_by_the_gap_it_leaves(
    session: Session, clean: Ledger,
) -> None:
    for table in (TraceEvent, OutboxItem):
        session.exec(delete(table).where(col(table.alert_id) == 2))
    session.exec(delete(Alert).where(col(Alert.id) == 2))
    session.commit()
    [finding] = verify_ledger(session)
    assert (finding.what, finding.expected) == ("alert 2", "in the ledger")
    assert finding.found == "deleted (its id is missing between others)"


def test_the_newest_alert_deleted_is_named_by_the_delivery_that_accepted_it(
    session: Session, clean: Ledger,
) -> None:
    session.add(Delivery(source="native", received_at=T0, body_sha256="0" * 64, body="{}",
                         status="accepted", http_status=202,
                         result={"id": 3, "alerts": [{"id": 3, "status": "new"}]}))
    session.commit()
    for table in (TraceEvent, OutboxItem):
        session.exec(delete(table).where(col(table.alert_id) == 3))
    session.exec(delete(Alert).where(col(Alert.id) == 3))
    session.commit()
    [finding] = verify_ledger(session)
    assert finding.what == "alert 3"
    assert finding.found.startswith("deleted (delivery ")
    assert "accepted it" in finding.found


def test_a_ledger_checked_with_another_key_has_every_seal_broken(
    session: Session, clean: Ledger, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AXTRACE_LEDGER_KEY", "another key")
    get_settings.cache_clear()
    found = verify_ledger(session)
    assert {f.what for f in found} == {"alert 1 seal", "alert 2 seal", "alert 3 seal"}
    assert len(found) == 6  # the trace seal and the state seal of each


def test_without_a_key_the_seals_are_not_checked_and_verify_says_so(
    session: Session, clean: Ledger, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.delenv("AXTRACE_LEDGER_KEY", raising=False)
    monkeypatch.setenv("AXTRACE_HOME", str(tmp_path / "elsewhere"))
    get_settings.cache_clear()
    [finding] = verify_ledger(session)
    assert (finding.what, finding.found) == ("ledger key", "neither: seals not checked")
    assert not (tmp_path / "elsewhere" / "ledger.key").exists()  # verify never makes one


def test_alerts_written_before_the_seals_existed_are_sealed_by_the_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    get_settings.cache_clear()
    command.upgrade(alembic_config(url), "0005")
    engine = make_engine(url)
    with engine.begin() as conn:  # an alert as 0005 wrote it: no seal columns yet
        conn.exec_driver_sql(
            "INSERT INTO alert (id, site, key, source, severity, title, labels, received_at,"
            " status, repeat_count, level, notified_level, wait_seq, trace_len, trace_head)"
            " VALUES (1, 'alpha', 'k', 'native', 'high', 't', '{}', '2026-03-02 09:00:00',"
            " 'open', 1, 0, 0, 0, 0, ?)", ("0" * 64,))
    upgrade(url)
    with Session(engine) as session:
        findings = verify_ledger(session)
    engine.dispose()
    assert [f.what for f in findings] == ["alert 1 trace"]  # no steps: seal fine, trace not


def test_an_overdue_alert_implies_its_overdue_step(session: Session, ledger: Ledger) -> None:
    ledger.alert("alpha", ack=60, resolve_escalations=1, reminders=1, overdue=True)
    assert verify_ledger(session) == [], "escalated for the resolve deadline, reminded, overdue"
    ledger.alert("alpha", ack=60, resolve_escalations=1, overdue=True, steps=[
        "received", "assigned", "notified", "acknowledged", "escalated", "notified"])
    [finding] = verify_ledger(session)
    assert (finding.what, finding.found) == ("alert 2 trace", "missing overdue (truncated?)")


def test_an_alert_its_source_resolved_before_anyone_acknowledged_it_implies_no_ignored_step(
    session: Session, ledger: Ledger,
) -> None:
    """A silent detector's alert resolved by its next heartbeat, say: open, then resolved."""
    ledger.alert("alpha", resolve=30, outcome="resolved_at_source")
    assert verify_ledger(session) == []
    ledger.alert("alpha", resolve=30, outcome="fixed")  # a person's resolve needs an ack
    [finding] = verify_ledger(session)
    assert (finding.what, finding.found) == ("alert 2 trace", "missing ignored (truncated?)")


def test_suppressed_and_released_alerts_verify_and_a_held_one_implies_its_suppressed_step(
    session: Session, ledger: Ledger,
) -> None:
    ledger.alert("alpha", suppress=600, ack=660, resolve=1200)
    ledger.alert("alpha", suppress=600, resolve=300, outcome="resolved_at_source")
    ledger.alert("alpha", after=(NOW - T0).total_seconds() - 60, suppress=600)
    assert verify_ledger(session) == []
    ledger.alert("beta", after=(NOW - T0).total_seconds() - 60, suppress=600,
                 steps=["received", "assigned"])
    [finding] = verify_ledger(session)
    assert (finding.what, finding.found) == ("alert 4 trace", "missing suppressed (truncated?)")
