"""What the ``site-report`` flow publishes: Prefect artifacts beside the runs.

Per run: one table artifact (``cross-site-figures``: every site's figures for each period),
one Markdown artifact per site (``site-report-<site>``) and one cross-site Markdown artifact
(``cross-site-report``: score, outliers, spread). Keyed artifacts keep their history in the UI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from axtrace.ledger.models import utcnow
from axtrace.reports.model import Report
from axtrace.reports.period import make_scope
from axtrace.reports.render import (
    artifact_rows,
    cross_site_markdown,
    score_text,
    site_markdown,
)
from axtrace.reports.service import code_version, current_report

PERIODS = {"last day": "1d", "last week": "7d"}
TABLE_KEY = "cross-site-figures"
CROSS_SITE_KEY = "cross-site-report"


def artifact_key(site: str) -> str:
    """``site-report-<site>``: lowercase letters, numbers and dashes only (Prefect's rule)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", site.lower()).strip("-") or "unnamed"
    return f"site-report-{slug}"


def build_reports(periods: dict[str, str], known_sites: list[str]) -> dict[str, Report]:
    """One report per named period, all ending now."""
    now = utcnow()
    newest = code_version(Path.cwd())
    return {name: current_report(make_scope(since=since, now=now), known_sites=known_sites,
                                 newest_workflow_version=newest, now=now)
            for name, since in periods.items()}


def publish(reports: dict[str, Report]) -> list[str]:
    """Create the artifacts of these reports; returns their keys."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    sites = sorted({s.site for report in reports.values() for s in report.sites})
    create_table_artifact(table=artifact_rows(reports), key=TABLE_KEY,
                          description="AxTrace figures per site and period.")
    for site in sites:
        create_markdown_artifact(markdown=site_markdown(site, reports), key=artifact_key(site),
                                 description=f"AxTrace figures of {site}.")
    last = next(reversed(reports.values()))
    create_markdown_artifact(markdown=cross_site_markdown(last), key=CROSS_SITE_KEY,
                             description=f"AxTrace consistency: {score_text(last)}.")
    return [TABLE_KEY, *(artifact_key(s) for s in sites), CROSS_SITE_KEY]


def run_site_report(periods: dict[str, str] | None = None) -> dict[str, Any]:
    """The body of the ``site-report`` flow: figures of every deployed site, published."""
    from axtrace.reports.verify import deployed_sites

    reports = build_reports(periods or PERIODS, deployed_sites())
    keys = publish(reports)
    return {
        "artifacts": keys,
        "score": {name: r.consistency.score for name, r in reports.items()},
        "flags": [f.message for r in reports.values() for f in r.consistency.flags],
    }
