"""The demo's ending: what a manager reads last, from the report of the demo's own story.

The story, with the builder's deadlines (acknowledge within 300 s per level, resolve within
3600 s), five alerts per site as the demo raises them:

- berlin-plant acknowledges at 60 s and resolves at 120 s;
- lyon-store escalates once (at 300 s), acknowledges at 400 s, resolves at 460 s;
- austin-region escalates twice, is ignored at 900 s and resolved at 910 s.

Per-figure consistency (1 - spread of rates / 100, fastest / slowest median): acknowledged on
time 100/0/0 -> 0; resolved on time 100/100/100 -> 1; step adherence 100 everywhere -> 1;
escalated 0/100/100 -> 0; ignored 0/0/100 -> 0; median time to acknowledge 60/400 (austin has
none) -> 0.15; median time to resolve 120/460/910 -> 120/910 = 0.1319. Score: 2.2819 / 7 =
32.6. One flag: austin's ignored rate (100% against at most 0%); its time to resolve is not
flagged (910 s is under twice lyon's 460 s), nor its escalations (lyon's are as many).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from axtrace.demo import PER_SITE, ending
from axtrace.reports.consistency import MIN_SAMPLE
from axtrace.reports.figures import build_report
from axtrace.reports.model import Scope
from tests.reports.builder import NOW, T0, Ledger


def test_the_demo_raises_enough_alerts_per_site_for_the_report_to_flag_one() -> None:
    assert PER_SITE >= MIN_SAMPLE


def test_the_demo_ends_with_the_score_the_flag_in_the_reports_words_and_where_to_look(
    session: Session,
) -> None:
    ledger = Ledger(session)
    ids: dict[str, list[int]] = {"berlin-plant": [], "lyon-store": [], "austin-region": []}
    for n in range(PER_SITE):
        ids["berlin-plant"].append(ledger.alert("berlin-plant", after=n, ack=60, resolve=120))
        ids["lyon-store"].append(ledger.alert("lyon-store", after=n, escalations=1, ack=400,
                                              resolve=460))
        ids["austin-region"].append(ledger.alert("austin-region", after=n, escalations=2,
                                                 ignored=True, resolve=910))
    report = build_report(session=session, scope=Scope(since=T0 - timedelta(days=1), until=NOW),
                          now=NOW, known_sites=list(ids))

    lines = ending(report.model_dump(mode="json"), ids, Path("/home/me/demo-report.html"),
                   "http://127.0.0.1:4200")

    assert lines == [
        "Consistency score across sites: 32.6 / 100 (100: every site works the same way).",
        "Flagged: austin-region: 100% of alerts ignored; all other sites at most 0%",
        "Where to look next:",
        "  the report:        /home/me/demo-report.html  (or `axtrace report --since 1h`)",
        f"  one alert of austin-region: axtrace trace {ids['austin-region'][0]}",
        "  its runs:          http://127.0.0.1:4200/runs, filtered by tag site:austin-region",
    ]


def test_without_a_flag_the_ending_says_so_and_still_points_somewhere() -> None:
    report = {"consistency": {"score": None, "flags": []}}
    lines = ending(report, {"berlin-plant": [7]}, Path("r.html"), "http://ui")
    assert lines[:2] == ["Consistency score across sites: - / 100 (100: every site works the "
                         "same way).", "Flagged: no site stands apart."]
    assert "axtrace trace 7" in lines[4]
