"""The report lists each site's policy changes made in the period next to its figures.

On the hand-worked ledger of ``test_figures.py`` (period ``T0 - 1 day <= at < NOW``), these
changes are on record (``policyhistory.record``, chained as ``sites apply`` and the auditor
write them):

    seq 1  alpha    T0 - 2 days   sites apply by ops   first on record          before: not listed
    seq 2  beta     T0 - 2 days   sites apply by ops   first on record          before: not listed
    seq 3  alpha    T0 + 1 h      sites apply by ops   level 1 ack 10m -> 5m    listed
    seq 4  beta     T0 + 2 h      prefect-ui           level 1: anna, ben -> anna   listed
    seq 5  epsilon  T0 + 3 h      sites apply by ops   first on record          listed (no alerts)
    seq 6  alpha    NOW           sites apply by ops   resolve 4h -> 2h         the end: not listed

So alpha lists seq 3, beta seq 4, epsilon (a site with no alerts, not known) seq 5 with zero
figures; gamma and delta none; the all-sites row none.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from rich.console import Console
from sqlmodel import Session

from axtrace import ownership, policyhistory
from axtrace.reports.figures import build_report
from axtrace.reports.html import to_html
from axtrace.reports.model import Report, Scope
from axtrace.reports.render import render_table, site_markdown, to_json
from axtrace.testing import pinned_policy
from tests.reports.builder import NOW, T0, Ledger

SCOPE = Scope(since=T0 - timedelta(days=1), until=NOW)
FILE = "/srv/axtrace/sites.yaml"


FASTER = pinned_policy(levels={1: {"acknowledge_within": "5m"}})


@pytest.fixture
def changes(session: Session, three: Ledger) -> None:
    def record(site: str, policy: dict[str, Any], after: timedelta, origin: str = "sites apply",
               ) -> None:
        actor, where = ("ops", FILE) if origin == "sites apply" else ("unknown", None)
        policyhistory.record(session, site=site, policy=policy, origin=origin, actor=actor,
                             where=where, at=T0 + after)

    record("alpha", pinned_policy(), -timedelta(days=2))
    record("beta", pinned_policy(), -timedelta(days=2))
    record("alpha", FASTER, timedelta(hours=1))
    record("beta", pinned_policy(levels={1: {"responders": ["anna"]}}), timedelta(hours=2),
           "prefect-ui")
    record("epsilon", pinned_policy(), timedelta(hours=3))
    record("alpha", {**FASTER, "resolve_within": "PT2H"}, NOW - T0)
    session.commit()


@pytest.fixture
def report(session: Session, changes: None) -> Report:
    return build_report(session=session, scope=SCOPE, now=NOW, known_sites=["delta"],
                        newest_workflow_version="wf-2")


def listed(report: Report) -> dict[str, list[int]]:
    return {s.site: [c.seq for c in s.policy_changes] for s in report.sites}


def test_each_site_lists_the_changes_made_in_the_period(report: Report) -> None:
    assert listed(report) == {"alpha": [3], "beta": [4], "gamma": [], "delta": [],
                              "epsilon": [5]}
    assert report.all_sites.policy_changes == []


def test_a_change_says_when_from_where_and_which_fields_changed(report: Report) -> None:
    alpha = next(s for s in report.sites if s.site == "alpha")
    [change] = alpha.policy_changes
    assert (change.at, change.origin, change.actor, change.where) == (
        T0 + timedelta(hours=1), "sites apply", "ops", FILE)
    assert (change.old_version, change.new_version) == (ownership.version(pinned_policy()),
                                                        ownership.version(FASTER))
    assert [c.model_dump() for c in change.changes] == [
        {"field": "escalation_chain.0.acknowledge_within", "kind": "changed",
         "before": "10m", "after": "5m"}]
    beta = next(s for s in report.sites if s.site == "beta")
    assert [(c.origin, c.actor, [f.field for f in c.changes]) for c in beta.policy_changes] == [
        ("prefect-ui", "unknown", ["escalation_chain.0.responders"])]


def test_a_site_with_a_change_and_no_alerts_is_listed_with_zero_figures(report: Report) -> None:
    epsilon = next(s for s in report.sites if s.site == "epsilon")
    assert epsilon.counts.raised == 0
    assert epsilon.ack_compliance.pct is None


def test_the_site_filter_applies_to_the_changes(session: Session, changes: None) -> None:
    scoped = build_report(session=session, scope=SCOPE.model_copy(update={"sites": ["beta"]}),
                          now=NOW)
    assert listed(scoped) == {"beta": [4]}


def test_every_format_shows_the_changes(report: Report) -> None:
    console = Console(record=True, width=300)
    console.print(render_table(report))
    text = console.export_text()
    assert "Policy changes in the period" in text
    assert "escalation_chain.0.acknowledge_within: 10m -> 5m" in text
    assert f"sites apply by ops ({FILE})" in text
    assert "escalation_chain.0.responders: anna, ben -> anna" in text
    assert "first on record" in text, "epsilon's first apply"
    page = to_html(report)
    assert 'id="policy-changes"' in page
    assert "escalation_chain.0.acknowledge_within: 10m -&gt; 5m" in page
    sites = {s["site"]: s for s in json.loads(to_json(report))["sites"]}
    assert sites["alpha"]["policy_changes"][0]["changes"][0]["after"] == "5m"
    assert "policy changed 2026-03-02 10:00:00" in site_markdown("alpha", {"week": report})


def test_an_empty_period_says_there_were_none(session: Session) -> None:
    empty = build_report(session=session, scope=SCOPE, now=NOW)
    console = Console(record=True, width=200)
    console.print(render_table(empty))
    assert "Policy changes in the period" in console.export_text()
    assert "<td colspan=\"5\">none</td>" in to_html(empty)
