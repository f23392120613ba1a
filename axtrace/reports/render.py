"""Formats of a report: a Rich table for the terminal, JSON and CSV for tools, Markdown for
Prefect artifacts (the HTML page is in :mod:`axtrace.reports.html`).

Names from the ledger (sites, detectors, versions, outcomes) are data in every format: escaped
for Rich (:func:`~axtrace.text.console_text`) and Markdown (:func:`~axtrace.text.markdown_text`),
formula-safe in CSV (:func:`~axtrace.text.csv_cell`); the HTML page escapes its own.

Every format reads the same :data:`COLUMNS`: a column names where its number sits in the JSON
(``path``) and how it reads (``fmt``), so the table shows exactly the JSON's numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from axtrace.reports.model import PolicyChangeSeen, Report, SiteFigures
from axtrace.reports.text import fmt_duration, fmt_int, fmt_number, fmt_pct, fmt_ratio
from axtrace.text import console_text, csv_cell, markdown_text, printable


@dataclass(frozen=True)
class Column:
    """One figure per site: its CSV key, table header, place in the JSON and format."""

    key: str
    header: str
    path: tuple[str, ...]
    fmt: Callable[[Any], str]

    def value(self, site: dict[str, Any]) -> Any:
        """The raw number in a site's JSON (``SiteFigures.model_dump()``)."""
        found: Any = site
        for part in self.path:
            found = found[part]
        return found

    def cell(self, site: dict[str, Any]) -> str:
        return self.fmt(self.value(site))


def _counts(key: str, header: str) -> Column:
    return Column(key, header, ("counts", key), fmt_int)


def _time(key: str, header: str, figure: str, stat: str) -> Column:
    return Column(key, header, (figure, stat), fmt_duration)


def _pct(key: str, header: str) -> Column:
    return Column(f"{key}_pct", header, (key, "pct"), fmt_pct)


VOLUME = (
    _counts("raised", "Raised"), _counts("acknowledged", "Ack'd"),
    _counts("resolved", "Resolved"), _counts("open", "Open"),
    _time("tta_median_s", "TTA median", "time_to_acknowledge", "median_s"),
    _time("tta_p90_s", "TTA p90", "time_to_acknowledge", "p90_s"),
    _time("tta_max_s", "TTA max", "time_to_acknowledge", "max_s"),
    _time("ttr_median_s", "TTR median", "time_to_resolve", "median_s"),
    _time("ttr_p90_s", "TTR p90", "time_to_resolve", "p90_s"),
    _time("ttr_max_s", "TTR max", "time_to_resolve", "max_s"),
)
PROCEDURE = (
    _pct("ack_compliance", "Ack on time"), _pct("resolve_compliance", "Resolved on time"),
    _pct("escalation_rate", "Escalated"), _pct("ignored_rate", "Ignored"),
    _pct("step_adherence", "Step adherence"), _pct("false_positive_rate", "False pos."),
    Column("ran_old_workflow", "Old workflow", ("ran_old_workflow",), fmt_int),
)
DEADLINES = (
    Column("escalated_for_acknowledge", "Esc. (ack)",
           ("deadlines", "escalated_for_acknowledge"), fmt_int),
    Column("escalated_for_resolve", "Esc. (resolve)",
           ("deadlines", "escalated_for_resolve"), fmt_int),
    Column("reminded", "Reminded", ("deadlines", "reminded"), fmt_int),
    Column("overdue", "Overdue", ("deadlines", "overdue"), fmt_int),
    Column("suppressed", "Suppressed", ("deadlines", "suppressed"), fmt_int),
    Column("released", "Released", ("deadlines", "released"), fmt_int),
)
COLUMNS = VOLUME + PROCEDURE + DEADLINES
"""Every per-site figure, in table order."""


def period_text(report: Report) -> str:
    scope = report.scope
    filters = [f"site {', '.join(scope.sites)}" if scope.sites else "",
               f"severity {scope.severity}" if scope.severity else "",
               f"detector {scope.detector}" if scope.detector else ""]
    where = "; ".join(f for f in filters if f)
    return (f"{scope.since:%Y-%m-%d %H:%M} to {scope.until:%Y-%m-%d %H:%M} UTC"
            + (f" ({where})" if where else ""))


def score_text(report: Report) -> str:
    score = report.consistency.score
    return "n/a (fewer than two sites with data)" if score is None else f"{score:g} / 100"


def site_rows(report: Report) -> list[dict[str, Any]]:
    """Each site's JSON, then the all-sites JSON: the rows every format prints."""
    return [s.model_dump(mode="json") for s in [*report.sites, report.all_sites]]


# --------------------------------------------------------------------------- Rich


def render_table(report: Report) -> Group:
    """The report for the terminal: figures per site, consistency, detectors, versions."""
    rows = site_rows(report)
    parts: list[Any] = [
        Text(f"AxTrace report, {period_text(report)}", style="bold"),
        figures_table("Alerts and times", VOLUME, rows),
        figures_table("Procedure", PROCEDURE, rows),
        figures_table("Deadlines", DEADLINES, rows),
        consistency_table(report),
        Text(f"Consistency score: {score_text(report)}", style="bold"),
    ]
    parts += [Text(printable(f"! {flag.message}"), style="red")
              for flag in report.consistency.flags]
    if report.sites_on_old_workflow:
        parts.append(Text(printable(f"Sites that ran an old workflow (newest "
                                    f"{report.newest_workflow_version}): "
                                    f"{', '.join(report.sites_on_old_workflow)}"),
                          style="yellow"))
    parts += [policy_changes_table(report), detectors_table(report), versions_table(report)]
    return Group(*parts)


def figures_table(title: str, columns: Sequence[Column], rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Site")
    for column in columns:
        table.add_column(column.header, justify="right")
    for row in rows:
        table.add_row(console_text(row["site"]), *(column.cell(row) for column in columns),
                      style="bold" if row is rows[-1] else None)
    return table


def consistency_table(report: Report) -> Table:
    table = Table("Figure", "Best", "Worst", "Ratio", "CV", "Consistency",
                  title="Consistency across sites", title_justify="left")
    for spread in report.consistency.figures:
        fmt = fmt_pct if spread.unit == "%" else fmt_duration
        table.add_row(
            spread.label,
            console_text(f"{spread.best_site} {fmt(spread.best)}" if spread.best_site else "-"),
            console_text(f"{spread.worst_site} {fmt(spread.worst)}" if spread.worst_site
                         else "-"),
            fmt_ratio(spread.ratio), fmt_number(spread.cv),
            fmt_number(None if spread.consistency is None else round(spread.consistency, 3)),
        )
    return table


CHANGE_HEADERS = ("Site", "When (UTC)", "From", "Version", "Fields changed")


def change_cells(change: PolicyChangeSeen) -> tuple[str, str, str, str, str]:
    """One policy change as plain text: site, when, from where, versions, fields changed."""
    origin = (f"sites apply by {change.actor} ({change.where})"
              if change.origin == "sites apply" else change.origin)
    fields = "; ".join(f"{c.field}: {c.before or '-'} -> {c.after or '-'}"
                       for c in change.changes) if change.old_version else "first on record"
    return (change.site, f"{change.at:%Y-%m-%d %H:%M:%S}", origin,
            f"{change.old_version or '-'} -> {change.new_version}", fields)


def change_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """Every policy change of the period, site by site, each site's oldest first."""
    return [change_cells(c) for site in report.sites for c in site.policy_changes]


def policy_changes_table(report: Report) -> Table:
    table = Table(*CHANGE_HEADERS, title="Policy changes in the period (they may explain the "
                  "figures above)", title_justify="left")
    for row in change_rows(report):
        table.add_row(*(console_text(cell) for cell in row))
    if not table.rows:
        table.add_row("-", "none", "", "", "")
    return table


def detectors_table(report: Report) -> Table:
    table = Table("Site", "Detector", "Version", "Raised", "Resolved", "False positives",
                  title="Detectors (feedback for the AI team)", title_justify="left")
    for site in report.sites:
        for det in site.by_detector:
            table.add_row(console_text(site.site), console_text(det.detector or "-"),
                          console_text(det.version or "-"),
                          str(det.counts.raised), str(det.counts.resolved),
                          fmt_pct(det.false_positive.pct))
    return table


def versions_table(report: Report) -> Table:
    table = Table("Site", "Outcomes", "Workflow versions", "Policy versions",
                  title="Outcomes and versions", title_justify="left")
    for site in report.sites:
        table.add_row(console_text(site.site), _pairs(site.outcomes.items()),
                      _pairs((v.version or "-", v.alerts) for v in site.workflow_versions),
                      _pairs((v.version or "-", v.alerts) for v in site.policy_versions))
    return table


def _pairs(pairs: Any) -> Text:
    return console_text(", ".join(f"{name}: {count}" for name, count in pairs) or "-")


# --------------------------------------------------------------------------- JSON, CSV


def to_json(report: Report) -> str:
    """The whole report as JSON (the shape of ``GET /v1/report``)."""
    return report.model_dump_json(indent=2)


def to_csv(report: Report) -> str:
    """One row per site and one for all sites: raw numbers, seconds and percentages."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["site", *(c.key for c in COLUMNS)])
    for row in site_rows(report):
        writer.writerow([csv_cell(row["site"]), *("" if (v := c.value(row)) is None else v
                                        for c in COLUMNS)])
    return out.getvalue()


# --------------------------------------------------------------------------- Markdown


def markdown_table(columns: Sequence[Column], rows: list[dict[str, Any]]) -> str:
    head = "| Site | " + " | ".join(c.header for c in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    body = ["| " + " | ".join([markdown_text(row["site"]), *(c.cell(row) for c in columns)])
            + " |"
            for row in rows]
    return "\n".join([head, rule, *body])


def cross_site_markdown(report: Report) -> str:
    """The cross-site artifact: score, flags, figures per site, spread per figure."""
    rows = site_rows(report)
    flags = "\n".join(f"- {markdown_text(f.message)}" for f in report.consistency.flags) \
        or "- none"
    old = ", ".join(markdown_text(s) for s in report.sites_on_old_workflow) or "none"
    spread = "\n".join(
        f"| {s.label} | {markdown_text(s.best_site or '-')} | "
        f"{markdown_text(s.worst_site or '-')} | {fmt_ratio(s.ratio)} "
        f"| {fmt_number(s.cv)} |" for s in report.consistency.figures)
    return (
        f"# AxTrace across sites\n\n{period_text(report)}\n\n"
        f"**Consistency score: {score_text(report)}**\n\n## Outliers\n{flags}\n\n"
        f"Sites that ran an old workflow: {old}\n\n## Alerts and times\n"
        f"{markdown_table(VOLUME, rows)}\n\n## Procedure\n{markdown_table(PROCEDURE, rows)}\n\n"
        f"## Deadlines\n{markdown_table(DEADLINES, rows)}\n\n"
        f"## Spread\n| Figure | Best | Worst | Ratio | CV |\n|---|---|---|---:|---:|\n{spread}\n"
    )


def site_markdown(site: str, reports: dict[str, Report]) -> str:
    """One site's artifact: its figures in every period (e.g. last day, last week)."""
    lines = [f"# AxTrace at {markdown_text(site)}\n"]
    for name, report in reports.items():
        found = next((s for s in report.sites if s.site == site), SiteFigures(site=site))
        row = found.model_dump(mode="json")
        flags = [f.message for f in report.consistency.flags if f.site == site]
        lines += [f"## {name}: {period_text(report)}\n", "| Figure | Value |", "|---|---:|"]
        lines += [f"| {c.header} | {c.cell(row)} |" for c in COLUMNS]
        lines += [f"\n- outlier: {markdown_text(m)}" for m in flags]
        lines += [f"\n- policy changed {markdown_text(', '.join(row[1:]))}"
                  for row in map(change_cells, found.policy_changes)]
        lines.append("")
    return "\n".join(lines)


def artifact_rows(reports: dict[str, Report]) -> list[dict[str, Any]]:
    """Rows of the table artifact: one per period and site, formatted like the table."""
    return [
        {"period": name, "site": row["site"], **{c.header: c.cell(row) for c in COLUMNS}}
        for name, report in reports.items() for row in site_rows(report)
    ]
