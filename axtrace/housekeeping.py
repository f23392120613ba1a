"""Scheduled flows beside the site deployments: the deadline auditor (and reports)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

AUDITOR_ENTRYPOINT = "flows/auditor.py:deadline_auditor"
AUDITOR_INTERVAL = timedelta(minutes=1)


def auditor_deployment(root: Path, work_pool: str | None = None) -> Any:
    """``deadline-auditor/axtrace``, every minute."""
    from axtrace.deploy import runner_deployment

    return runner_deployment(
        root, AUDITOR_ENTRYPOINT, name="axtrace", work_pool=work_pool,
        interval=AUDITOR_INTERVAL, tags=["axtrace"],
        description="Checks every minute that each open alert has a live run; repairs and "
                    "records what it finds; emits axtrace.auditor.heartbeat.",
    )


def housekeeping_deployments(root: Path, work_pool: str | None = None) -> list[Any]:
    """The auditor (every minute) and the daily site report."""
    from axtrace.reports.deploy import site_report_deployment

    return [auditor_deployment(root, work_pool), site_report_deployment(root, work_pool)]
