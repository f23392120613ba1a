"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Charts: time to acknowledge per site as box plots (``#chart-tta``: whiskers min to max, box
q1 to q3, a bar at the median, a tick at p90, on a log time axis because waits span seconds
to days), deadline compliance per site as bars (``#chart-compliance``), and a weekly trend of
alerts raised (bars) and acknowledge compliance (line) (``#chart-weekly``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from axtrace.reports.model import Durations, Report, SiteFigures, WeekFigures
from axtrace.reports.render import (
    CHANGE_HEADERS,
    DEADLINES,
    PROCEDURE,
    VOLUME,
    Column,
    change_rows,
    period_text,
    score_text,
    site_rows,
)
from axtrace.reports.text import fmt_duration, fmt_number, fmt_pct, fmt_ratio

WIDTH = 760
LABEL_W = 140
ROW_H = 24
ACK_COLOUR, RESOLVE_COLOUR, BOX_COLOUR = "#3867d6", "#20bf6b", "#8854d0"
TICKS = {1: "1s", 10: "10s", 60: "1m", 600: "10m", 3600: "1h", 6 * 3600: "6h", 86400: "1d",
         7 * 86400: "1w"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.all td{font-weight:bold;background:#f4f4f4}
.flag{color:#b33}.score{font-size:1.4em;font-weight:bold}
svg text{font-size:11px;fill:#333}
"""


def _svg(chart_id: str, title: str, height: int, body: Iterable[str], width: int = WIDTH) -> str:
    return (f'<svg id="{chart_id}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, colour: str = "#999") -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}"/>'


def _rect(x: float, y: float, w: float, h: float, colour: str, tip: str) -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{escape(tip)}</title></rect>')


# --------------------------------------------------------------------------- box plots


class LogAxis:
    """Seconds on a log scale between ``LABEL_W`` and the chart's right edge."""

    def __init__(self, values: Sequence[float]) -> None:
        self.lo = math.log10(max(1.0, min(values, default=1.0)))
        self.hi = max(self.lo + 1, math.log10(max(1.0, max(values, default=10.0))))

    def x(self, seconds: float) -> float:
        span = WIDTH - LABEL_W - 20
        return LABEL_W + span * (math.log10(max(seconds, 1.0)) - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[int]:
        return [t for t in TICKS if self.lo <= math.log10(t) <= self.hi]


def box_plots(sites: Sequence[SiteFigures]) -> str:
    """Time to acknowledge per site: min-max whiskers, q1-q3 box, median bar, p90 tick."""
    stats = [(s.site, s.time_to_acknowledge.n, _six(s.time_to_acknowledge)) for s in sites]
    axis = LogAxis([v for _, _, six in stats if six for v in (six[0], six[-1])])
    height = 36 + ROW_H * max(len(stats), 1)
    body = [_text(LABEL_W, 12, "time to acknowledge, log scale: whiskers min to max, box q1 to "
                               "q3, black bar median, red tick p90")]
    for t in axis.ticks():
        body += [_line(axis.x(t), 18, axis.x(t), height - 12, "#eee"),
                 _text(axis.x(t), height - 2, TICKS[t], "middle")]
    for i, (site, n, six) in enumerate(stats):
        y = 22 + i * ROW_H
        body.append(_text(4, y + 14, site))
        body += _box(axis, y, f"{site}: n={n}", six) if six else [
            _text(LABEL_W, y + 14, "no acknowledged alerts")]
    return _svg("chart-tta", "Time to acknowledge per site", height, body)


def _six(d: Durations) -> tuple[float, ...] | None:
    """min, q1, median, q3, p90, max; None when there is nothing to draw."""
    found = [v for v in (d.min_s, d.q1_s, d.median_s, d.q3_s, d.p90_s, d.max_s) if v is not None]
    return tuple(found) if d.n and len(found) == 6 else None


def _box(axis: LogAxis, y: float, label: str, six: tuple[float, ...]) -> list[str]:
    """One site's box at height ``y``; ``label`` starts its tooltip."""
    low, q1, median, q3, p90, high = six
    tip = (f"{label}, min {fmt_duration(low)}, q1 {fmt_duration(q1)}, median "
           f"{fmt_duration(median)}, q3 {fmt_duration(q3)}, p90 {fmt_duration(p90)}, "
           f"max {fmt_duration(high)}")
    mid = y + ROW_H / 2
    return [
        _line(axis.x(low), mid, axis.x(high), mid, "#555"),
        _rect(axis.x(q1), y + 4, axis.x(q3) - axis.x(q1) + 1, ROW_H - 8, BOX_COLOUR, tip),
        _line(axis.x(median), y + 2, axis.x(median), y + ROW_H - 2, "#000"),
        _line(axis.x(p90), y + 6, axis.x(p90), y + ROW_H - 6, "#d63031"),
    ]


# --------------------------------------------------------------------------- compliance bars


def compliance_bars(sites: Sequence[SiteFigures]) -> str:
    """Acknowledge- and resolve-deadline compliance per site, 0-100%."""
    span = WIDTH - LABEL_W - 60
    height = 40 + 2 * ROW_H * max(len(sites), 1)
    body = [_rect(LABEL_W, 4, 10, 10, ACK_COLOUR, "acknowledged on time"),
            _text(LABEL_W + 14, 13, "acknowledged on time"),
            _rect(LABEL_W + 170, 4, 10, 10, RESOLVE_COLOUR, "resolved on time"),
            _text(LABEL_W + 184, 13, "resolved on time")]
    for i, site in enumerate(sites):
        y = 24 + i * 2 * ROW_H
        body.append(_text(4, y + ROW_H, site.site))
        for j, (rate, colour, what) in enumerate((
                (site.ack_compliance, ACK_COLOUR, "acknowledged on time"),
                (site.resolve_compliance, RESOLVE_COLOUR, "resolved on time"))):
            top = y + j * (ROW_H - 2)
            if rate.pct is None:
                body.append(_text(LABEL_W, top + 14, f"{what}: nothing due"))
                continue
            tip = f"{site.site}: {rate.count} of {rate.of} {what} ({fmt_pct(rate.pct)})"
            body += [_rect(LABEL_W, top + 2, span * rate.pct / 100, ROW_H - 6, colour, tip),
                     _text(LABEL_W + span * rate.pct / 100 + 4, top + 14, fmt_pct(rate.pct))]
    return _svg("chart-compliance", "Deadline compliance per site", height, body)


# --------------------------------------------------------------------------- weekly trend


def weekly_trend(weeks: Sequence[WeekFigures]) -> str:
    """Alerts raised per week (bars, left axis) and acknowledge compliance (line, 0-100%)."""
    height, top, bottom = 220, 20, 180
    step = max(24.0, (WIDTH - 100) / max(len(weeks), 1))
    width = max(WIDTH, int(60 + step * len(weeks) + 40))
    most = max((w.raised for w in weeks), default=0) or 1
    body = [_text(4, 12, f"bars: alerts raised per week (max {most}); "
                         "line: acknowledged on time, 0-100%"),
            _line(50, bottom, width - 34, bottom, "#999"),
            _text(width - 2, top + 4, "100%", "end"), _text(width - 2, bottom, "0%", "end")]
    points = []
    for i, week in enumerate(weeks):
        x = 60 + i * step
        bar = (bottom - top) * week.raised / most
        body += [_rect(x, bottom - bar, step * 0.6, bar, "#a5b1c2",
                       f"week of {week.week_start}: {week.raised} alerts, "
                       f"{fmt_pct(week.ack_compliance.pct)} acknowledged on time"),
                 _text(x + step * 0.3, bottom + 14, f"{week.week_start:%m-%d}", "middle")]
        if week.ack_compliance.pct is not None:
            points.append((x + step * 0.3, bottom - (bottom - top) * week.ack_compliance.pct / 100))
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{ACK_COLOUR}" '
                    'stroke-width="2"/>')
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{ACK_COLOUR}"/>'
                 for x, y in points]
    return _svg("chart-weekly", "Alerts and acknowledge compliance per week", height, body,
                width)


# --------------------------------------------------------------------------- page


def _table(columns: Sequence[Column], rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{escape(c.header)}</th>" for c in columns)
    body = "".join(
        f'<tr{" class=all" if row is rows[-1] else ""}><td>{escape(str(row["site"]))}</td>'
        + "".join(f"<td>{escape(c.cell(row))}</td>" for c in columns) + "</tr>"
        for row in rows)
    return f"<table><tr><th>Site</th>{head}</tr>{body}</table>"


def _spread_table(report: Report) -> str:
    rows = []
    for s in report.consistency.figures:
        fmt = fmt_pct if s.unit == "%" else fmt_duration
        rows.append(
            f"<tr><td>{escape(s.label)}</td><td>{escape(str(s.best_site or '-'))} "
            f"{escape(fmt(s.best))}</td><td>{escape(str(s.worst_site or '-'))} "
            f"{escape(fmt(s.worst))}</td><td>{escape(fmt_ratio(s.ratio))}</td>"
            f"<td>{escape(fmt_number(s.cv))}</td></tr>")
    return ("<table><tr><th>Figure</th><th>Best</th><th>Worst</th><th>Ratio</th>"
            f"<th>CV</th></tr>{''.join(rows)}</table>")


def _detector_table(report: Report) -> str:
    rows = "".join(
        f"<tr><td>{escape(s.site)}</td><td>{escape(d.detector or '-')}</td>"
        f"<td>{escape(d.version or '-')}</td><td>{d.counts.raised}</td>"
        f"<td>{d.counts.resolved}</td><td>{escape(fmt_pct(d.false_positive.pct))}</td></tr>"
        for s in report.sites for d in s.by_detector)
    return ("<table><tr><th>Site</th><th>Detector</th><th>Version</th><th>Raised</th>"
            f"<th>Resolved</th><th>False positives</th></tr>{rows}</table>")


def _changes_table(report: Report) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in change_rows(report)) or '<tr><td colspan="5">none</td></tr>'
    head = "".join(f"<th>{escape(h)}</th>" for h in CHANGE_HEADERS)
    return f'<table id="policy-changes"><tr>{head}</tr>{rows}</table>'


def to_html(report: Report) -> str:
    """The whole report as one offline HTML page."""
    rows: list[dict[str, Any]] = list(site_rows(report))
    flags = "".join(f'<li class="flag">{escape(f.message)}</li>'
                    for f in report.consistency.flags) or "<li>none</li>"
    old = escape(", ".join(report.sites_on_old_workflow) or "none")
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>AxTrace report</title><style>{STYLE}</style></head><body>"
        f"<h1>AxTrace report</h1><p>{escape(period_text(report))}; generated "
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC</p>"
        f'<p class="score">Consistency score: {escape(score_text(report))}</p>'
        f"<h2>Outliers</h2><ul>{flags}</ul>"
        f"<p>Sites that ran an old workflow: {old}</p>"
        f"<h2>Time to acknowledge</h2>{box_plots(report.sites)}"
        f"<h2>Deadline compliance</h2>{compliance_bars(report.sites)}"
        f"<h2>Weekly trend</h2>{weekly_trend(report.weekly)}"
        f"<h2>Alerts and times</h2>{_table(VOLUME, rows)}"
        f"<h2>Procedure</h2>{_table(PROCEDURE, rows)}"
        f"<h2>Deadlines</h2>{_table(DEADLINES, rows)}"
        f"<h2>Policy changes in the period</h2>{_changes_table(report)}"
        f"<h2>Spread across sites</h2>{_spread_table(report)}"
        f"<h2>Detectors</h2>{_detector_table(report)}"
        "</body></html>\n"
    )
