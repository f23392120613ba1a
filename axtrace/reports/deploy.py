"""The deployment of the ``site-report`` flow: daily, next to the sites' deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SITE_REPORT_FLOW = "site-report"
SITE_REPORT_ENTRYPOINT = "flows/site_report.py:site_report"
DEPLOYMENT_NAME = "daily"
DAILY_CRON = "0 6 * * *"
"""06:00 UTC every day."""


def site_report_deployment(
    root: Path, work_pool: str | None = None, *, cron: str = DAILY_CRON,
) -> Any:
    """``site-report/daily``: a ``RunnerDeployment`` to ``apply()`` or add to a runner."""
    from prefect.client.schemas.schedules import CronSchedule

    from axtrace.deploy import runner_deployment

    return runner_deployment(
        root, SITE_REPORT_ENTRYPOINT, name=DEPLOYMENT_NAME, work_pool=work_pool,
        schedules=[CronSchedule(cron=cron, timezone="UTC")], tags=["axtrace", "site-report"],
        description="AxTrace managers' view: each site's figures for the last day and week, "
                    "and how consistent the sites are, as artifacts of this run.",
    )
