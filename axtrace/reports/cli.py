"""``axtrace report`` and ``axtrace verify``: load, call, print.

The lead registers them on the main app (``app.command()(report)``, ``app.command()(verify)``);
:data:`app` holds both for tests and for running this module alone.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from axtrace.errors import AxTraceError
from axtrace.text import console_text, labelled

if TYPE_CHECKING:  # the ledger and pydantic models load only when a command runs
    from axtrace.reports.model import Report
    from axtrace.reports.verify import Drift

DEFAULT_SITES = Path("deployments/sites.yaml")
SitesOpt = Annotated[Path, typer.Option("--sites", help="The sites file.")]
# emoji=False: ``:name:`` in a site or detector name prints as written, not as an emoji
console = Console(emoji=False)
err = Console(stderr=True, emoji=False)
app = typer.Typer(help="AxTrace managers' view: report and verify.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    HTML = "html"


def _fail(message: str, code: int = 2) -> None:
    err.print(labelled("error:", "bold red", message))
    raise typer.Exit(code)


def report(
    since: Annotated[str, typer.Option(help="Start: 30m, 12h, 7d, 2w back from --until, or an "
                                            "ISO date or datetime.")] = "7d",
    until: Annotated[str | None, typer.Option(help="End (default now).")] = None,
    site: Annotated[list[str] | None, typer.Option(help="Only this site (repeatable).")] = None,
    severity: Annotated[str | None, typer.Option(help="critical, high, medium or low.")] = None,
    detector: Annotated[str | None, typer.Option(help="Detector name, or name@version.")] = None,
    format_: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
    sites: SitesOpt = DEFAULT_SITES,
) -> None:
    """Figures per site and across sites for a period: alerts, times to acknowledge and
    resolve, deadline compliance, escalations, ignored alerts, step adherence, outcomes,
    versions, and how consistent the sites are."""
    from axtrace.ledger.models import utcnow
    from axtrace.reports.period import make_scope
    from axtrace.reports.service import code_version, current_report, site_slugs

    try:
        scope = make_scope(since=since, until=until, sites=site or (), severity=severity,
                           detector=detector, now=utcnow())
        with err.status("Computing the report ..."):
            found = current_report(scope, known_sites=site_slugs(sites),
                                   newest_workflow_version=code_version(sites.parent))
    except AxTraceError as exc:
        _fail(exc.message)
    write(found, format_, output)


def write(found: Report, format_: Format, output: Path | None) -> None:
    """Print the report, or write it to ``output``."""
    from axtrace.reports.html import to_html
    from axtrace.reports.render import render_table, to_csv, to_json

    if format_ is Format.TABLE:
        if output is None:
            console.print(render_table(found))
            return
        with output.open("w") as file:
            Console(file=file, width=200, no_color=True, emoji=False).print(render_table(found))
    else:
        text = {Format.JSON: to_json, Format.CSV: to_csv, Format.HTML: to_html}[format_](found)
        if output is None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            return
        output.write_text(text)
    err.print(f"Wrote {output}")


def verify(
    sites: SitesOpt = DEFAULT_SITES,
    prefect: Annotated[bool, typer.Option(help="Check policies and deployments on the "
                                               "Prefect server.")] = True,
    ledger: Annotated[bool, typer.Option(help="Also recompute every alert's hash chain.")] = False,
    explain: Annotated[bool, typer.Option(
        help="Name the behaviour files that differ for a site deployed with another "
             "version (from the manifest `sites apply` recorded).")] = False,
) -> None:
    """Prove every site runs the same workflow: policy blocks, deployments (entrypoint,
    version, code) and, with --ledger, untouched traces. Exits 1 listing what drifted."""
    findings: list[Drift] = []
    try:
        if prefect:
            findings += _verify_prefect(sites, explain=explain)
        if ledger:
            findings += _verify_ledger()
    except AxTraceError as exc:
        _fail(exc.message)
    if not findings:
        console.print("[green]✓[/] no drift: every site runs the same workflow"
                      + (" and every trace is intact" if ledger else ""))
        return
    console.print(drift_table(findings))
    err.print(Text.assemble((f"{len(findings)} drift(s)", "bold red"), " at: ",
                            console_text(", ".join(sorted({d.site for d in findings})))))
    raise typer.Exit(1)


def _verify_prefect(sites: Path, *, explain: bool) -> list[Drift]:
    from axtrace.reports.verify import verify_sites

    with err.status("Comparing sites, Prefect and code ..."):
        try:
            return verify_sites(sites, explain=explain)
        except (httpx.HTTPError, OSError) as exc:
            _fail(f"Prefect not reachable ({exc}); is the server running?", 3)
    return []


def _verify_ledger() -> list[Drift]:
    from axtrace.ledger import repo
    from axtrace.ledger.session import ledger_session
    from axtrace.reports.verify import verify_ledger

    with ledger_session() as session, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err) as progress:
        bar = progress.add_task("Checking traces", total=repo.count_alerts(session=session))
        return verify_ledger(session, progress=lambda n: progress.advance(bar, n))


def drift_table(findings: list[Drift]) -> Table:
    table = Table("Site", "What", "Expected", "Found", title="Drift", title_justify="left")
    for drift in findings:
        table.add_row(console_text(drift.site), console_text(drift.what),
                      console_text(drift.expected), console_text(drift.found, style="red"))
    return table


app.command()(report)
app.command()(verify)

if __name__ == "__main__":
    app()
