"""Formats: the table shows the JSON's numbers, CSV carries them raw, HTML is one offline page
with its three charts, Markdown feeds the Prefect artifacts."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from axtrace.reports.figures import build_report
from axtrace.reports.html import to_html
from axtrace.reports.model import Report, Scope
from axtrace.reports.publish import artifact_key
from axtrace.reports.render import (
    COLUMNS,
    DEADLINES,
    PROCEDURE,
    VOLUME,
    artifact_rows,
    cross_site_markdown,
    render_table,
    site_markdown,
    to_csv,
    to_json,
)
from tests.reports.builder import NOW, T0, Ledger


@pytest.fixture
def report(session: Session, three: Ledger) -> Report:
    return build_report(session=session, scope=Scope(since=T0 - timedelta(days=1), until=NOW),
                        now=NOW, known_sites=["delta"], newest_workflow_version="wf-2")


def tables(report: Report) -> dict[str, Table]:
    return {str(t.title): t for t in render_table(report).renderables if isinstance(t, Table)}


def cells(table: Table) -> list[list[str]]:
    """The table's rows as text."""
    columns = [list(c.cells) for c in table.columns]
    return [[str(col[i]) for col in columns] for i in range(table.row_count)]


def dig(found: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        found = found[part]
    return found


def test_the_table_shows_exactly_the_numbers_of_the_json(report: Report) -> None:
    data = json.loads(to_json(report))
    expected_rows = [*data["sites"], data["all_sites"]]
    for title, columns in (("Alerts and times", VOLUME), ("Procedure", PROCEDURE),
                           ("Deadlines", DEADLINES)):
        shown = cells(tables(report)[title])
        assert [row[0] for row in shown] == [r["site"] for r in expected_rows]
        for row, site in zip(shown, expected_rows, strict=True):
            assert row[1:] == [c.fmt(dig(site, c.path)) for c in columns]


def test_the_table_reads_as_worked_out_by_hand(report: Report) -> None:
    procedure = {row[0]: row[1:] for row in cells(tables(report)["Procedure"])}
    assert procedure["alpha"] == ["80%", "60%", "0%", "0%", "75%", "25%", "0"]
    assert procedure["delta"] == ["-", "-", "-", "-", "-", "-", "0"]
    volume = {row[0]: row[1:] for row in cells(tables(report)["Alerts and times"])}
    assert volume["alpha"] == ["5", "5", "4", "1", "3m", "6m 40s", "6m 40s", "17m 30s",
                               "1h 6m", "1h 6m"]


def test_the_terminal_output_holds_the_score_flags_and_old_workflow_sites(
    report: Report,
) -> None:
    console = Console(record=True, width=250)
    console.print(render_table(report))
    text = console.export_text()
    assert "Consistency score: 47.4 / 100" in text
    assert "Sites that ran an old workflow (newest wf-2): beta" in text


def test_json_carries_counts_and_denominators_of_every_rate(report: Report) -> None:
    alpha = json.loads(to_json(report))["sites"][0]
    assert alpha["ack_compliance"] == {"count": 4, "of": 5, "pct": 80.0}
    assert alpha["time_to_resolve"]["median_s"] == 1050
    assert json.loads(to_json(report))["consistency"]["score"] == 47.4


def test_csv_has_one_row_per_site_and_one_for_all_with_raw_numbers(report: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert [r["site"] for r in rows] == ["alpha", "beta", "delta", "gamma", "(all)"]
    assert list(rows[0]) == ["site", *(c.key for c in COLUMNS)]
    assert rows[0]["tta_median_s"] == "180.0"
    assert rows[0]["ack_compliance_pct"] == "80.0"
    assert rows[2]["ack_compliance_pct"] == "", "delta had nothing due: empty, not 0"


def test_html_is_one_offline_page_with_its_three_charts(report: Report) -> None:
    page = to_html(report)
    assert page.count("<svg") == 3
    for chart in ("chart-tta", "chart-compliance", "chart-weekly"):
        assert f'id="{chart}"' in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?http""", page), "nothing fetched from the network"


def test_the_box_plots_draw_one_box_per_site_with_acknowledgements(report: Report) -> None:
    box = re.search(r'<svg id="chart-tta".*?</svg>', to_html(report), re.S)
    assert box is not None
    assert box.group().count("<rect") == 2  # alpha and beta
    assert box.group().count("no acknowledged alerts") == 2  # delta and gamma
    assert "alpha: n=5, min 1m, q1 2m, median 3m, q3 4m, p90 6m 40s, max 6m 40s" in box.group()


def test_the_compliance_bars_and_weekly_trend_show_the_figures(report: Report) -> None:
    page = to_html(report)
    bars = re.search(r'<svg id="chart-compliance".*?</svg>', page, re.S)
    weekly = re.search(r'<svg id="chart-weekly".*?</svg>', page, re.S)
    assert bars is not None
    assert weekly is not None
    assert "alpha: 4 of 5 acknowledged on time (80%)" in bars.group()
    assert "delta" in bars.group()
    assert bars.group().count("nothing due") == 2  # delta: neither deadline due
    assert "week of 2026-03-02: 11 alerts, 54.5% acknowledged on time" in weekly.group()
    assert weekly.group().count("<circle") == 1  # one week had acknowledgements due


def test_html_escapes_what_it_prints(session: Session, ledger: Ledger) -> None:
    ledger.alert("alpha", detector="<b>bold</b>")
    page = to_html(build_report(session=session, now=NOW,
                                scope=Scope(since=T0, until=NOW)))
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


def test_an_empty_report_renders_in_every_format(session: Session) -> None:
    empty = build_report(session=session, now=NOW, scope=Scope(since=T0, until=NOW))
    assert empty.sites == []
    assert to_html(empty).count("<svg") == 3
    assert json.loads(to_json(empty))["consistency"]["score"] is None
    assert to_csv(empty).count("\n") == 2
    console = Console(record=True, width=200)
    console.print(render_table(empty))
    assert "n/a (fewer than two sites with data)" in console.export_text()


def test_markdown_artifacts_per_site_and_across_sites(report: Report) -> None:
    reports = {"last week": report}
    alpha = site_markdown("alpha", reports)
    assert "# AxTrace at alpha" in alpha
    assert "| Ack on time | 80% |" in alpha
    cross = cross_site_markdown(report)
    assert "**Consistency score: 47.4 / 100**" in cross
    assert "Sites that ran an old workflow: beta" in cross
    rows = artifact_rows(reports)
    assert len(rows) == 5
    assert rows[0]["period"] == "last week"
    assert rows[0]["Ack on time"] == "80%"


@pytest.mark.parametrize(("site", "key"), [
    ("berlin-plant", "site-report-berlin-plant"),
    ("Lyon Store #12", "site-report-lyon-store-12"),
    ("___", "site-report-unnamed"),
])
def test_artifact_keys_are_lowercase_letters_numbers_and_dashes(site: str, key: str) -> None:
    assert artifact_key(site) == key
    assert re.fullmatch(r"[a-z0-9-]+", artifact_key(site))
