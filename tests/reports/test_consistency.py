"""Consistency across sites: spread, outlier flags and the score, as the module defines them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from axtrace.reports.consistency import FIGURES, consistency, spread, stands_apart
from axtrace.reports.figures import build_report
from axtrace.reports.model import Durations, Rate, Report, Scope, SiteFigures
from tests.reports.builder import NOW, T0, Ledger

FIGURE = {f.key: f for f in FIGURES}


def figures(name: str, *, ignored: tuple[int, int] = (0, 10), tta: float | None = None,
            tta_n: int = 10) -> SiteFigures:
    count, of = ignored
    return SiteFigures(
        site=name, ignored_rate=Rate(count=count, of=of, pct=round(100 * count / of, 1)),
        time_to_acknowledge=Durations(n=tta_n if tta else 0, median_s=tta),
    )


def test_the_three_site_ledger_scores_47_4(session: Session, three: Ledger) -> None:
    """Per-figure consistency: ack 1-0.80, resolve 1-0.25, adherence 1-0.25,
    escalation 1-0.667, ignored 1-0.667, median TTA 180/300, median TTR 1050/3000."""
    found = build_report(session=session, scope=Scope(since=T0 - timedelta(days=1), until=NOW),
                         now=NOW, known_sites=["delta"])
    by_key = {s.figure: s for s in found.consistency.figures}
    assert by_key["ack_compliance"].consistency == 0.2
    assert by_key["ttr_median"].consistency == 0.35
    assert by_key["tta_median"].consistency == 0.6
    assert found.consistency.score == 47.4


def test_spread_names_the_best_and_worst_site_with_ratio_and_cv() -> None:
    sites = [figures("a", ignored=(1, 10)), figures("b", ignored=(2, 10)),
             figures("c", ignored=(4, 10)), SiteFigures(site="empty")]
    found = spread(FIGURE["ignored_rate"], sites)
    assert (found.best_site, found.best, found.worst_site, found.worst) == ("a", 10, "c", 40)
    assert found.sites == 3
    assert found.ratio == 4.0
    assert found.cv == pytest.approx(0.535, abs=0.001)
    assert found.consistency == 0.7


def test_a_ratio_against_zero_is_left_out_rather_than_infinite() -> None:
    found = spread(FIGURE["ignored_rate"], [figures("a", ignored=(0, 10)),
                                            figures("b", ignored=(3, 10))])
    assert found.ratio is None


def test_durations_are_consistent_by_fastest_over_slowest() -> None:
    found = spread(FIGURE["tta_median"], [figures("a", tta=240), figures("b", tta=480)])
    assert found.consistency == 0.5


def test_one_site_alone_has_no_consistency_to_score() -> None:
    assert consistency([figures("a", ignored=(3, 10))]).score is None
    assert consistency([]).score is None


def test_identical_sites_score_100() -> None:
    sites = [figures(n, ignored=(1, 10), tta=60) for n in "abc"]
    assert consistency(sites).score == 100


def test_a_site_far_apart_from_the_pack_is_flagged_in_plain_words() -> None:
    sites = [figures("alpha", ignored=(0, 20)), figures("beta", ignored=(1, 20)),
             figures("delta", ignored=(0, 20)), figures("gamma", ignored=(31, 50))]
    flags = [f for f in consistency(sites).flags if f.figure == "ignored_rate"]
    assert [f.message for f in flags] == [
        "gamma: 62% of alerts ignored; all other sites at most 5%"]


@pytest.mark.parametrize(("value", "others", "flagged"), [
    (62.0, [0.0, 5.0, 4.5], True),     # apart from the pack, by more than 10 points
    (40.0, [0.0, 20.0, 30.0], False),  # the end of a continuum: gap 10 < spread 30
    (9.0, [0.0, 0.0, 0.0], False),     # apart, but by less than 10 points
    (3.0, [0.0, 5.0, 4.5], False),     # not the worst
])
def test_the_outlier_rule_for_rates(value: float, others: list[float], flagged: bool) -> None:
    assert stands_apart(FIGURE["ignored_rate"], value, others) is flagged


@pytest.mark.parametrize(("value", "others", "flagged"), [
    (1200.0, [200.0, 250.0, 300.0], True),  # four times the slowest other site
    (500.0, [200.0, 250.0, 300.0], False),  # less than twice as slow
    (60.0, [10.0, 12.0, 15.0], False),      # four times as slow, but only 45 s slower
])
def test_the_outlier_rule_for_durations(value: float, others: list[float], flagged: bool) -> None:
    assert stands_apart(FIGURE["tta_median"], value, others) is flagged


def test_a_site_with_too_few_alerts_is_not_flagged() -> None:
    sites = [figures("a", ignored=(0, 20)), figures("b", ignored=(0, 20)),
             figures("c", ignored=(3, 4))]
    assert consistency(sites).flags == []


def test_two_sites_cannot_tell_which_one_is_odd() -> None:
    sites = [figures("a", ignored=(0, 20)), figures("b", ignored=(15, 20))]
    assert consistency(sites).flags == []


def test_a_site_that_ignores_most_alerts_is_flagged_from_the_ledger(
    session: Session, ledger: Ledger,
) -> None:
    for name in ("north", "south", "east"):
        for i in range(6):
            ledger.alert(name, after=i * 600, ack=60, resolve=600)
    for i in range(6):
        if i < 4:
            ledger.alert("west", after=i * 600, escalations=1, ignored=True, resolve=3000)
        else:
            ledger.alert("west", after=i * 600, ack=60, resolve=600)
    found: Report = build_report(session=session, now=NOW,
                                 scope=Scope(since=T0, until=NOW))
    assert {f.figure: f.message for f in found.consistency.flags} == {
        "ack_compliance": "west: 33.3% of alerts acknowledged on time; "
                          "all other sites at least 100%",
        "escalation_rate": "west: 66.7% of alerts escalated; all other sites at most 0%",
        "ignored_rate": "west: 66.7% of alerts ignored; all other sites at most 0%",
        "ttr_median": "west: median time to resolve 50m; all other sites at most 10m",
        "ttr_p90": "west: p90 time to resolve 50m; all other sites at most 10m",
    }
