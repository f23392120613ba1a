"""``axtrace policy history``: every change of the sites' ownership policies, from the ledger."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from axtrace.text import console_text

policy_app = typer.Typer(help="The sites' ownership policies on record.")


@policy_app.command("history")
def policy_history(
    site: Annotated[str | None, typer.Option(help="Only this site.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Every policy change on record, oldest first: when, which site, from where (`sites
    apply` by whom from which file, or an edit in the Prefect UI), and each field changed."""
    from axtrace import policyhistory
    from axtrace.ledger.session import ledger_session

    if fmt not in ("table", "json"):
        raise typer.BadParameter(f"table or json, got {fmt!r}", param_hint="--format")
    with ledger_session() as session:
        entries = policyhistory.history(session, site=site)
    if fmt == "json":
        typer.echo(json.dumps([e.model_dump(mode="json", exclude={"id"}) for e in entries],
                              indent=2))
        return
    table = Table("seq", "when (UTC)", "site", "from", "version", "changes",
                  title="Policy history", title_justify="left")
    for entry in entries:
        origin = entry.origin if entry.origin != "sites apply" else (
            f"sites apply by {entry.actor}\n{entry.where}")
        changes = "\n".join(
            f"{c['field']}: {c['before'] or '-'} -> {c['after'] or '-'}"
            for c in entry.changes) if entry.old_version else "first on record"
        table.add_row(str(entry.seq), f"{entry.at:%Y-%m-%d %H:%M:%S}", console_text(entry.site),
                      console_text(origin),
                      f"{entry.old_version or '-'} -> {entry.new_version}",
                      console_text(changes))
    Console(emoji=False).print(table)
