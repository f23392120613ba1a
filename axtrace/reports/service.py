"""The report as the shells need it: figures from this process's ledger, with the newest
workflow version taken from the code on disk and the sites taken from the sites file."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import yaml

from axtrace.errors import InvalidInput
from axtrace.ledger.models import utcnow
from axtrace.ledger.session import ledger_session
from axtrace.reports.figures import build_report
from axtrace.reports.model import Report, Scope


def code_version(start: Path | None = None) -> str | None:
    """``workflow_version`` of the project holding ``start`` (default cwd); None outside one."""
    from axtrace.sites import project_root
    from axtrace.version import workflow_version

    try:
        return workflow_version(project_root(start))
    except InvalidInput:
        return None


def site_slugs(path: Path) -> list[str]:
    """The site slugs of a sites file (unvalidated; ``axtrace verify`` validates), or none."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []
    sites = data.get("sites") if isinstance(data, dict) else None
    return sorted(str(slug) for slug in sites) if isinstance(sites, dict) else []


def current_report(
    scope: Scope, *, known_sites: Iterable[str] = (), newest_workflow_version: str | None = None,
    now: datetime | None = None,
) -> Report:
    """Every figure of ``scope`` from the ledger of this process's settings."""
    with ledger_session() as session:
        return build_report(session=session, scope=scope, now=now or utcnow(),
                            known_sites=known_sites,
                            newest_workflow_version=newest_workflow_version)
