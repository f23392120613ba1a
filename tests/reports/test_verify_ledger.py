"""``verify --ledger``: every alert whose trace was edited or truncated is named."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlmodel import Session, col

from axtrace.ledger.models import TraceEvent
from axtrace.reports.verify import verify_ledger
from tests.reports.builder import Ledger


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
