"""The site-report flow's deployment and the flow file's shape."""

from __future__ import annotations

import ast
from pathlib import Path

from axtrace.reports.deploy import DAILY_CRON, SITE_REPORT_ENTRYPOINT, site_report_deployment

ROOT = Path(__file__).parents[2]


def test_the_deployment_runs_the_flow_daily_from_the_project_root() -> None:
    deployment = site_report_deployment(ROOT)
    assert deployment.name == "daily"
    assert deployment.flow_name == "site-report"
    assert deployment.entrypoint == SITE_REPORT_ENTRYPOINT
    [schedule] = deployment.schedules
    assert schedule.schedule.cron == DAILY_CRON
    assert schedule.schedule.timezone == "UTC"
    assert "axtrace" in deployment.tags


def test_the_flow_file_uses_absolute_imports_only_and_holds_no_state() -> None:
    tree = ast.parse((ROOT / "flows" / "site_report.py").read_text())
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert all(n.level == 0 for n in imports)
    assert {type(n) for n in tree.body} <= {ast.Expr, ast.ImportFrom, ast.Import,
                                             ast.FunctionDef}
