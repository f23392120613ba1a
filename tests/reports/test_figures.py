"""Every figure of the report on a ledger worked out by hand (``builder.three_sites``).

Deadlines: acknowledge within 300 s per level, resolve within 3600 s. Times in seconds.

alpha (5 alerts, all level 1)
    a1 ack 60, resolved 600;  a2 ack 120, resolved 1200;  a3 ack 180 (one refusal on the way),
    resolved 4000 (late) as false_positive;  a4 ack 400 (late by 100, never escalated), open;
    a5 ack 240, resolved 900, but its trace lacks ``notified``.
    TTA 60 120 180 240 400: median 180, p90 (rank ceil(4.5)=5) 400.
    TTR 600 900 1200 4000: median 1050, p90 (rank 4) 4000.
    ack on time 4 of 5 = 80%; resolve on time 3 of 5 (a4's deadline has passed) = 60%;
    adherence 3 of 4 closed = 75%; false positives 1 of 4 resolved = 25%.
beta (4 alerts)
    b1, b2 escalated at 300, acknowledged at level 2 (400, 500), resolved 1800 / 2000;
    b2 ran the old workflow wf-1;  b3 ack 100, resolved 700;  b4 ack 200 (critical), open.
    TTA 100 200 400 500: median 300, p90 500.  TTR 700 1800 2000: median 1800, p90 2000.
    ack on time 2 of 4 = 50%; resolve on time 3 of 4 = 75%; escalated 2 of 4 = 50%;
    adherence 3 of 3 = 100%; false positives 0 of 3.
gamma (3 alerts)
    g1 escalated, ignored, resolved 3000 as false_positive; g2 escalated, ignored, open;
    g3 received a minute before the report, within its deadlines.
    No TTA; TTR 3000. ack on time 0 of 2 due = 0%; resolve on time 1 of 2 due = 50%;
    escalated 2 of 3 = 66.7%; ignored 2 of 3 = 66.7%; adherence 1 of 1.
delta: a known site without alerts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from axtrace.reports import query
from axtrace.reports.figures import build_report, follows_procedure, steps_of
from axtrace.reports.model import Report, Scope, SiteFigures
from tests.reports.builder import NOW, T0, Ledger, three_sites

SCOPE = Scope(since=T0 - timedelta(days=1), until=NOW)


def report_of(session: Session, scope: Scope = SCOPE) -> Report:
    return build_report(session=session, scope=scope, now=NOW, known_sites=["delta"],
                        newest_workflow_version="wf-2")


def site(report: Report, name: str) -> SiteFigures:
    return next(s for s in report.sites if s.site == name)


@pytest.fixture
def report(session: Session, three: Ledger) -> Report:
    return report_of(session)


def test_counts_of_raised_acknowledged_resolved_and_open(report: Report) -> None:
    counts = {s.site: s.counts.model_dump() for s in report.sites}
    assert counts == {
        "alpha": {"raised": 5, "acknowledged": 5, "resolved": 4, "open": 1},
        "beta": {"raised": 4, "acknowledged": 4, "resolved": 3, "open": 1},
        "gamma": {"raised": 3, "acknowledged": 0, "resolved": 1, "open": 2},
        "delta": {"raised": 0, "acknowledged": 0, "resolved": 0, "open": 0},
    }
    assert report.all_sites.counts.model_dump() == {
        "raised": 12, "acknowledged": 9, "resolved": 8, "open": 4}


def test_times_to_acknowledge_and_resolve_are_median_p90_and_max(report: Report) -> None:
    tta = {s.site: (s.time_to_acknowledge.median_s, s.time_to_acknowledge.p90_s,
                    s.time_to_acknowledge.max_s) for s in report.sites}
    ttr = {s.site: (s.time_to_resolve.median_s, s.time_to_resolve.p90_s,
                    s.time_to_resolve.max_s) for s in report.sites}
    assert tta == {"alpha": (180, 400, 400), "beta": (300, 500, 500),
                   "gamma": (None, None, None), "delta": (None, None, None)}
    assert ttr == {"alpha": (1050, 4000, 4000), "beta": (1800, 2000, 2000),
                   "gamma": (3000, 3000, 3000), "delta": (None, None, None)}


def test_all_sites_pool_the_durations_of_every_site(report: Report) -> None:
    tta, ttr = report.all_sites.time_to_acknowledge, report.all_sites.time_to_resolve
    assert (tta.n, tta.median_s, tta.p90_s, tta.max_s) == (9, 200, 500, 500)
    assert (ttr.n, ttr.median_s, ttr.p90_s, ttr.max_s) == (8, 1500, 4000, 4000)


def test_deadline_compliance_counts_only_settled_deadlines(report: Report) -> None:
    ack = {s.site: (s.ack_compliance.count, s.ack_compliance.of, s.ack_compliance.pct)
           for s in report.sites}
    resolve = {s.site: (s.resolve_compliance.count, s.resolve_compliance.of,
                        s.resolve_compliance.pct) for s in report.sites}
    assert ack == {"alpha": (4, 5, 80.0), "beta": (2, 4, 50.0), "gamma": (0, 2, 0.0),
                   "delta": (0, 0, None)}
    assert resolve == {"alpha": (3, 5, 60.0), "beta": (3, 4, 75.0), "gamma": (1, 2, 50.0),
                       "delta": (0, 0, None)}
    assert report.all_sites.ack_compliance.pct == 54.5
    assert report.all_sites.resolve_compliance.pct == 63.6


def test_an_acknowledgement_at_level_two_is_not_on_time_even_within_its_own_deadline(
    report: Report,
) -> None:
    beta = site(report, "beta")
    assert beta.counts.acknowledged == 4
    assert beta.ack_compliance.count == 2, "b1 and b2 were acknowledged only after escalating"


def test_escalation_and_ignored_rates(report: Report) -> None:
    rates = {s.site: (s.escalation_rate.pct, s.ignored_rate.pct) for s in report.sites}
    assert rates == {"alpha": (0.0, 0.0), "beta": (50.0, 0.0), "gamma": (66.7, 66.7),
                     "delta": (None, None)}


def test_step_adherence_counts_closed_alerts_whose_trace_follows_the_procedure(
    report: Report,
) -> None:
    adherence = {s.site: (s.step_adherence.count, s.step_adherence.of)
                 for s in report.sites}
    assert adherence == {"alpha": (3, 4), "beta": (3, 3), "gamma": (1, 1), "delta": (0, 0)}
    assert report.all_sites.step_adherence.pct == 87.5


def test_outcomes_and_false_positive_rates_per_site_and_detector(report: Report) -> None:
    alpha, beta, gamma = (site(report, n) for n in ("alpha", "beta", "gamma"))
    assert alpha.outcomes == {"false_positive": 1, "fixed": 3}
    assert beta.outcomes == {"fixed": 2, "known_issue": 1}
    assert (alpha.false_positive_rate.pct, beta.false_positive_rate.pct,
            gamma.false_positive_rate.pct) == (25.0, 0.0, 100.0)
    detectors = {(d.detector, d.version): (d.counts.raised, d.false_positive.pct)
                 for d in beta.by_detector}
    assert detectors == {("forecast", "3"): (1, 0.0), ("vision-qa", "1.0"): (3, 0.0)}


def test_counts_by_severity(report: Report) -> None:
    beta = site(report, "beta")
    assert {k: v.raised for k, v in beta.by_severity.items()} == {"critical": 1, "high": 3}
    assert beta.by_severity["critical"].open == 1


def test_versions_seen_and_sites_on_an_old_workflow(report: Report) -> None:
    beta = site(report, "beta")
    assert [(v.version, v.alerts) for v in beta.workflow_versions] == [
        ("wf-2", 3), ("wf-1", 1)]
    assert beta.ran_old_workflow == 1
    assert [(v.version, v.alerts) for v in beta.policy_versions] == [("pol-1", 4)]
    assert report.sites_on_old_workflow == ["beta"]
    assert report.newest_workflow_version == "wf-2"


def test_without_the_code_version_the_newest_is_the_one_first_seen_last(
    session: Session, ledger: Ledger,
) -> None:
    ledger.alert("alpha", after=0, workflow="wf-1")
    ledger.alert("beta", after=60, workflow="wf-1")
    ledger.alert("alpha", after=3600, workflow="wf-2")
    found = build_report(session=session, scope=SCOPE, now=NOW)
    assert found.newest_workflow_version == "wf-2"
    assert found.sites_on_old_workflow == ["alpha", "beta"]


def test_the_weekly_trend_covers_every_week_of_the_period(report: Report) -> None:
    weeks = [(w.week_start, w.raised, w.ack_compliance.count, w.ack_compliance.of)
             for w in report.weekly]
    assert weeks == [(date(2026, 2, 23), 0, 0, 0), (date(2026, 3, 2), 11, 6, 11),
                     (date(2026, 3, 9), 1, 0, 0)]


def test_filters_by_site_severity_and_detector(session: Session, three: Ledger) -> None:
    by_site = report_of(session, SCOPE.model_copy(update={"sites": ["beta"]}))
    assert [s.site for s in by_site.sites] == ["beta"]
    critical = report_of(session, SCOPE.model_copy(update={"severity": "critical"}))
    assert critical.all_sites.counts.raised == 1
    forecast = report_of(session, SCOPE.model_copy(update={"detector": "forecast@3"}))
    assert forecast.all_sites.counts.raised == 1
    assert report_of(session, SCOPE.model_copy(
        update={"detector": "forecast@9"})).all_sites.counts.raised == 0


def test_an_empty_period_reports_known_sites_with_no_figures(
    session: Session, three: Ledger,
) -> None:
    later = Scope(since=NOW + timedelta(days=1), until=NOW + timedelta(days=2))
    found = report_of(session, later)
    assert [s.site for s in found.sites] == ["delta"]
    assert found.all_sites.counts.raised == 0
    assert found.all_sites.time_to_acknowledge.median_s is None
    assert found.consistency.score is None
    assert found.consistency.flags == []


def test_the_period_includes_its_start_and_excludes_its_end(
    session: Session, ledger: Ledger,
) -> None:
    ledger.alert("alpha", after=0)
    ledger.alert("alpha", after=3600)
    found = report_of(session, Scope(since=T0, until=T0 + timedelta(seconds=3600)))
    assert found.all_sites.counts.raised == 1


def test_figures_do_not_depend_on_how_sqlite_is_told_to_plan(
    session: Session, three: Ledger, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(query, "is_wide", lambda _conn, _scope: True)
    scanned = report_of(session).model_dump()
    monkeypatch.setattr(query, "is_wide", lambda _conn, _scope: False)
    indexed = report_of(session).model_dump()
    assert scanned == indexed


def test_a_period_holding_most_alerts_is_scanned_and_a_narrow_one_uses_the_indexes(
    session: Session, three: Ledger,
) -> None:
    conn = session.connection()
    assert query.is_wide(conn, SCOPE)
    assert not query.is_wide(conn, Scope(since=NOW - timedelta(hours=1), until=NOW))
    assert query.is_wide(conn, SCOPE.model_copy(update={"sites": ["alpha"]})), "5 of 12"
    assert not query.is_wide(conn, SCOPE.model_copy(update={"sites": ["delta"]}))


@pytest.mark.postgres
def test_postgresql_gives_the_same_figures_as_sqlite(
    session: Session, three: Ledger, postgres_engine: Engine,
) -> None:
    with Session(postgres_engine, expire_on_commit=False) as pg:
        three_sites(Ledger(pg))
        on_postgres = report_of(pg).model_dump()
    assert on_postgres == report_of(session).model_dump()


# --------------------------------------------------------------------------- adherence


HAPPY = "received,assigned,notified,acknowledged,resolved,closed"


def path(steps: str) -> str:
    return ",".join(f"{i}{s}" for i, s in enumerate(steps.split(","), start=1))


@pytest.mark.parametrize("steps", [
    HAPPY,
    "received,assigned,notified,escalated,notified,acknowledged,resolved,closed",
    "received,assigned,notified,escalated,notified,escalated,notified,ignored,resolved,closed",
    "received,assigned,notified,acknowledged,reminded,reminded,resolved,closed",
    "received,assigned,notified,acknowledged,escalated,notified,reminded,escalated,notified,"
    "overdue,reminded,resolved,closed",
])
def test_the_standard_paths_adhere(steps: str) -> None:
    assert follows_procedure(path(steps))


@pytest.mark.parametrize("steps", [
    "received,assigned,acknowledged,resolved,closed",
    "received,assigned,acknowledged,notified,resolved,closed",
    "received,assigned,notified,acknowledged,resolved,resolved,closed",
    "received,assigned,notified,escalated,acknowledged,resolved,closed",
    "received,assigned,notified,acknowledged,closed",
    "assigned,received,notified,acknowledged,resolved,closed",
    "received,assigned,notified,acknowledged,ignored,resolved,closed",
    "received,assigned,notified,acknowledged,escalated,resolved,closed",
    "received,assigned,notified,acknowledged,overdue,escalated,notified,resolved,closed",
    "received,assigned,notified,acknowledged,overdue,overdue,resolved,closed",
    "received,assigned,notified,ignored,reminded,resolved,closed",
])
def test_a_missing_repeated_or_misplaced_step_breaks_adherence(steps: str) -> None:
    assert not follows_procedure(path(steps))


def test_steps_are_read_in_seq_order_whatever_order_the_database_joined_them() -> None:
    shuffled = "3notified,1received,6closed,2assigned,5resolved,4acknowledged"
    assert ",".join(steps_of(shuffled)) == HAPPY
    assert steps_of("10closed,9resolved") == ("resolved", "closed")


def test_refusals_do_not_break_adherence_but_a_skipped_step_does(
    session: Session, ledger: Ledger,
) -> None:
    ledger.alert("alpha", ack=60, resolve=600, refusals=2)
    ledger.alert("alpha", ack=60, resolve=600,
                 steps=["received", "assigned", "notified", "resolved", "closed"])
    adherence = report_of(session).all_sites.step_adherence
    assert (adherence.count, adherence.of) == (1, 2)


def test_an_alert_still_open_at_the_deadline_counts_as_not_acknowledged_on_time(
    session: Session, ledger: Ledger,
) -> None:
    ledger.alert("alpha", after=0)  # never acknowledged, deadline long passed, not escalated
    ledger.alert("alpha", after=(NOW - T0).total_seconds() - 10)  # still within its deadline
    ack = report_of(session).all_sites.ack_compliance
    assert (ack.count, ack.of) == (0, 1)


def test_the_weeks_are_iso_weeks_starting_monday_utc(session: Session, ledger: Ledger) -> None:
    sunday_night = datetime(2026, 3, 8, 23, 59, tzinfo=UTC)
    ledger.alert("alpha", after=(sunday_night - T0).total_seconds())
    ledger.alert("alpha", after=(sunday_night - T0).total_seconds() + 120)
    monday = datetime(2026, 3, 16, tzinfo=UTC)
    found = report_of(session, Scope(since=T0, until=monday))
    assert [(w.week_start, w.raised) for w in found.weekly] == [
        (date(2026, 3, 2), 1), (date(2026, 3, 9), 1)]


def test_deadlines_count_escalations_by_reason_reminders_and_overdue_alerts(
    session: Session, ledger: Ledger,
) -> None:
    """Resolve within 3600 s of receipt, and 3600 s again at each level it escalates to.

    alpha: x1 acknowledged at 60 at level 1, its resolve deadline escalates it at 3600 to
    level 2, reminded twice, resolved at 5000 (by level 2's deadline, 7200, but not by its
    first); x2 acknowledged at 60, resolved at 600; x3, received 3700 s before the report,
    acknowledged at 60 and escalated at 3600: level 2's deadline is still ahead, its first has
    passed. Resolve on time 1 of 3 (x2); acknowledged on time 3 of 3 (each at level 1: a resolve
    escalation later does not change that); escalated 2 of 3; adherence 2 of 2 closed.
    beta: y1 escalated at 300 (acknowledge deadline), acknowledged at 400 at level 2, escalated
    at 3600 to level 3 (resolve deadline), overdue at 7200, still open; y2 acknowledged at 100,
    resolved at 700. Resolve on time 1 of 2; acknowledged on time 1 of 2; adherence 1 of 1.
    """
    ledger.alert("alpha", ack=60, resolve_escalations=1, reminders=2, resolve=5000)
    ledger.alert("alpha", ack=60, resolve=600)
    ledger.alert("alpha", after=(NOW - T0).total_seconds() - 3700, ack=60,
                 resolve_escalations=1)
    ledger.alert("beta", escalations=1, ack=400, resolve_escalations=1, overdue=True)
    ledger.alert("beta", ack=100, resolve=700)

    report = report_of(session)

    deadlines = {s.site: s.deadlines.model_dump() for s in report.sites if s.counts.raised}
    assert deadlines == {
        "alpha": {"escalated_for_acknowledge": 0, "escalated_for_resolve": 2, "reminded": 2,
                  "overdue": 0, "suppressed": 0, "released": 0},
        "beta": {"escalated_for_acknowledge": 1, "escalated_for_resolve": 1, "reminded": 0,
                 "overdue": 1, "suppressed": 0, "released": 0},
    }
    assert report.all_sites.deadlines.model_dump() == {
        "escalated_for_acknowledge": 1, "escalated_for_resolve": 3, "reminded": 2,
        "overdue": 1, "suppressed": 0, "released": 0}
    alpha, beta = site(report, "alpha"), site(report, "beta")
    assert (alpha.resolve_compliance.count, alpha.resolve_compliance.of) == (1, 3)
    assert (beta.resolve_compliance.count, beta.resolve_compliance.of) == (1, 2)
    assert (alpha.ack_compliance.count, alpha.ack_compliance.of) == (3, 3)
    assert (beta.ack_compliance.count, beta.ack_compliance.of) == (1, 2)
    assert (alpha.escalation_rate.count, alpha.escalation_rate.of) == (2, 3)
    assert (alpha.step_adherence.count, alpha.step_adherence.of) == (2, 2)
    assert (beta.step_adherence.count, beta.step_adherence.of) == (1, 1)


def test_maintenance_windows_count_suppressed_and_released_alerts_and_hide_none(
    session: Session, ledger: Ledger,
) -> None:
    """Acknowledge within 300 s, resolve within 3600 s, both counted from the release.

    alpha: a1 held 600 s, released at 600 (acknowledge by 900, resolve by 4200), acknowledged
    at 660, resolved at 1200; a2 held 600 s and resolved at its source at 300 (no one was
    notified: not ignored, no deadline due); a3 received 60 s before the report in a window of
    600 s, still held; a4 no window, acknowledged at 60, resolved at 600. Raised 4, open 1
    (a3); suppressed 3, released 1; acknowledged on time 2 of 2 (a1, a4; a2 and a3 had no
    deadline), ignored 0 of 4, resolved on time 2 of 2, adherence 3 of 3 closed; time to
    acknowledge counts from receipt, the window included: 660 and 60, median 360.
    beta: b1 held 1800 s, acknowledged at 2400 (300 s late: its deadline was 2100), resolved
    at 3000 (by 5400); b2 no window, escalated once, acknowledged at 400, resolved at 1800.
    Suppressed 1, released 1; acknowledged on time 0 of 2, resolved on time 2 of 2.
    """
    ledger.alert("alpha", suppress=600, ack=660, resolve=1200)
    ledger.alert("alpha", suppress=600, resolve=300, outcome="resolved_at_source")
    ledger.alert("alpha", after=(NOW - T0).total_seconds() - 60, suppress=600)
    ledger.alert("alpha", after=3600, ack=60, resolve=600)
    ledger.alert("beta", suppress=1800, ack=2400, resolve=3000)
    ledger.alert("beta", after=3600, escalations=1, ack=400, resolve=1800)

    report = report_of(session)

    held = {s.site: (s.deadlines.suppressed, s.deadlines.released)
            for s in report.sites if s.counts.raised}
    assert held == {"alpha": (3, 1), "beta": (1, 1)}
    assert (report.all_sites.deadlines.suppressed, report.all_sites.deadlines.released) == (4, 2)
    alpha, beta = site(report, "alpha"), site(report, "beta")
    assert (alpha.counts.raised, alpha.counts.open, alpha.counts.resolved) == (4, 1, 3)
    assert (alpha.ack_compliance.count, alpha.ack_compliance.of) == (2, 2)
    assert (alpha.ignored_rate.count, alpha.ignored_rate.of) == (0, 4)
    assert (alpha.resolve_compliance.count, alpha.resolve_compliance.of) == (2, 2)
    assert (alpha.step_adherence.count, alpha.step_adherence.of) == (3, 3)
    assert alpha.time_to_acknowledge.median_s == 360
    assert (beta.ack_compliance.count, beta.ack_compliance.of) == (0, 2)
    assert (beta.resolve_compliance.count, beta.resolve_compliance.of) == (2, 2)
    assert (beta.step_adherence.count, beta.step_adherence.of) == (2, 2)


@pytest.mark.parametrize(("path", "adheres"), [
    ("received,assigned,suppressed,released,notified,acknowledged,resolved,closed", True),
    ("received,assigned,suppressed,resolved,closed", True),
    ("received,assigned,suppressed,released,notified,escalated,notified,ignored,resolved,closed",
     True),
    ("received,assigned,suppressed,notified,acknowledged,resolved,closed", False),
    ("received,assigned,suppressed,acknowledged,resolved,closed", False),
    ("received,assigned,released,notified,acknowledged,resolved,closed", False),
])
def test_a_window_may_hold_the_chain_back_but_not_replace_it(path: str, adheres: bool) -> None:
    tokens = ",".join(f"{i}{step}" for i, step in enumerate(path.split(","), start=1))
    assert follows_procedure(tokens) is adheres
