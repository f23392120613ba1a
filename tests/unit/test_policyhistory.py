"""Every change of a site's policy is on record, field by field, chained, and checked."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col
from typer.testing import CliRunner

from axtrace import ownership, policyhistory
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import PolicyChange, utcnow
from axtrace.reports.verify import verify_ledger
from axtrace.testing import make_policy, pinned_policy
from tests.unit.conftest import POLICY

FASTER = {1: {"acknowledge_within": "5m"}}
"""Level 1 acknowledged within 5 minutes instead of 10."""


def apply(session: Session, policy: dict[str, Any], site: str = "berlin-plant") -> Any:
    entry = policyhistory.record(session, site=site, policy=policy, origin="sites apply",
                                 actor="ops", where="/srv/sites.yaml")
    session.commit()
    return entry


def test_the_first_apply_puts_every_field_on_record(ledger: str) -> None:
    with Session(engine_for(ledger), expire_on_commit=False) as session:
        entry = apply(session, pinned_policy())
    assert (entry.seq, entry.old_version, entry.origin, entry.actor) == (1, None, "sites apply",
                                                                         "ops")
    assert entry.new_version == ownership.version(pinned_policy())
    assert {"field": "resolve_within", "kind": "added", "before": None,
            "after": "4h"} in entry.changes


def test_applying_the_same_policy_again_records_nothing(ledger: str) -> None:
    with Session(engine_for(ledger), expire_on_commit=False) as session:
        apply(session, pinned_policy())
        assert apply(session, pinned_policy()) is None
        assert len(policyhistory.history(session)) == 1


def test_a_change_is_recorded_field_by_field_with_both_versions(ledger: str) -> None:
    with Session(engine_for(ledger), expire_on_commit=False) as session:
        first = apply(session, pinned_policy())
        second = apply(session, pinned_policy(levels=FASTER))
    assert second.old_version == first.new_version != second.new_version
    assert second.changes == [{"field": "escalation_chain.0.acknowledge_within",
                               "kind": "changed", "before": "10m", "after": "5m"}]
    assert (second.seq, second.prev_hash) == (2, first.hash)


def test_sites_share_one_chain_and_history_filters_by_site(ledger: str) -> None:
    with Session(engine_for(ledger), expire_on_commit=False) as session:
        apply(session, pinned_policy())
        apply(session, pinned_policy(), site="lyon-store")
        apply(session, pinned_policy(levels=FASTER))
        assert [e.seq for e in policyhistory.history(session, site="berlin-plant")] == [1, 3]
        assert verify_ledger(session) == []


def test_an_entry_edited_in_the_database_breaks_the_chain_verify_checks(ledger: str) -> None:
    with Session(engine_for(ledger), expire_on_commit=False) as session:
        apply(session, pinned_policy())
        apply(session, pinned_policy(levels=FASTER))
        session.exec(update(PolicyChange).where(col(PolicyChange.seq) == 2)
                     .values(actor="someone else"))
        session.commit()
        [finding] = verify_ledger(session)
    assert (finding.site, finding.what, finding.found) == (
        "berlin-plant", "policy history", "edited, removed or inserted change at seq 2")


def test_an_entry_removed_from_the_middle_is_found(ledger: str) -> None:
    with Session(engine_for(ledger), expire_on_commit=False) as session:
        for policy in (pinned_policy(), pinned_policy(levels=FASTER), pinned_policy()):
            apply(session, policy)
        session.exec(delete(PolicyChange).where(col(PolicyChange.seq) == 2))
        session.commit()
        [finding] = verify_ledger(session)
    assert finding.found == "edited, removed or inserted change at seq 3"


def block(data: dict[str, Any], minutes_ago: float, name: str = "berlin-plant") -> Any:
    """The fields of a Prefect ``BlockDocument`` the detection reads."""
    return SimpleNamespace(name=name, data=data, updated=utcnow() - timedelta(minutes=minutes_ago))


def test_a_block_edited_outside_sites_apply_is_recorded_as_a_prefect_ui_change(
    ledger: str,
) -> None:
    with Session(engine_for(ledger), expire_on_commit=False) as session:
        apply(session, pinned_policy())
        edited = block(make_policy(levels=FASTER), minutes_ago=5)
        [entry] = policyhistory.detect_edits([edited], session, utcnow())
        session.commit()
    assert (entry.origin, entry.actor, entry.at) == ("prefect-ui", "unknown", edited.updated)
    assert [c["field"] for c in entry.changes] == ["escalation_chain.0.acknowledge_within"]


def test_a_block_updated_within_the_last_minute_is_left_to_the_apply_that_saved_it(
    ledger: str,
) -> None:
    with Session(engine_for(ledger), expire_on_commit=False) as session:
        assert policyhistory.detect_edits([block(POLICY, minutes_ago=0.2)], session,
                                          utcnow()) == []


def test_a_block_that_does_not_validate_is_left_to_verify(ledger: str) -> None:
    with Session(engine_for(ledger), expire_on_commit=False) as session:
        assert policyhistory.detect_edits([block({"owning_team": "x"}, minutes_ago=5)],
                                          session, utcnow()) == []


def test_policy_history_prints_who_changed_what_from_where(ledger: str) -> None:
    from axtrace.cli import app

    with Session(engine_for(ledger), expire_on_commit=False) as session:
        apply(session, pinned_policy())
        apply(session, pinned_policy(levels=FASTER))
    table = CliRunner().invoke(app, ["policy", "history", "--site", "berlin-plant"],
                               env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "sites apply by ops" in table.output
    assert "escalation_chain.0.acknowledge_within: 10m -> 5m" in table.output
    listed = json.loads(CliRunner().invoke(app, ["policy", "history", "--format", "json"]).output)
    assert [e["seq"] for e in listed] == [1, 2]
