"""The ``axtrace`` command line (Typer + Rich). Commands load, call, print: a few lines each.

What comes from the ledger, the API or a file (titles, names, error messages) is printed as
:func:`axtrace.text.console_text` (a Rich ``Text``, never markup): ``[/]`` in a title prints as
written, control characters (terminal escape sequences) are dropped.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import httpx
import typer
from pydantic import SecretStr
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from axtrace.errors import AxTraceError
from axtrace.ledger import seal
from axtrace.settings import Settings, get_settings
from axtrace.text import console_text, labelled

if TYPE_CHECKING:
    from axtrace.sitefile import Checked, Problem

app = typer.Typer(help="AxTrace: the same, provable response to AI alerts at every site.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
sites_app = typer.Typer(help="The sites in sites.yaml: policies and deployments.")
db_app = typer.Typer(help="The ledger database.")
app.add_typer(sites_app, name="sites")
app.add_typer(db_app, name="db")
# emoji=False: ``:name:`` in a title prints as written, not as an emoji
console = Console(emoji=False)
err = Console(stderr=True, emoji=False)

SitesOpt = Annotated[Path, typer.Option("--sites", help="The sites file.")]
DEFAULT_SITES = Path("deployments/sites.yaml")


def _fail(message: str, code: int = 1) -> NoReturn:
    """Say what failed and exit with ``code``: 1 a check found a problem, 2 the command or
    its input cannot be used, 3 the API, Prefect or the ledger is away (try again), 4 not
    allowed (the same codes as :mod:`axtrace.errors` declares)."""
    err.print(labelled("error:", "bold red", message))
    raise typer.Exit(code)


def _api(method: str, path: str, **kwargs: Any) -> Any:
    settings = get_settings()
    url = settings.base_api_url + path
    token = api_token(method, path, settings)
    headers = {"authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    try:
        response = httpx.request(method, url, timeout=120, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        _fail(f"AxTrace API not reachable at {url} ({exc}); is `axtrace up` running?", 3)
    if response.status_code >= 400:
        try:
            details = response.json()["detail"]
            text = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:]) or 'request'}: {d['msg']}"
                for d in details
            ) if isinstance(details, list) else str(details)
        except (ValueError, KeyError, TypeError):
            text = response.text
        _fail(text, 4 if response.status_code == 403 else 2)
    return response.json()


def api_token(method: str, path: str, settings: Settings) -> SecretStr | None:
    """The credential the CLI sends: the intake token to deliver alerts; the user's own
    token (``AXTRACE_RESPONDER_TOKEN``) to act; to read, the user's token or the intake
    token."""
    if method == "POST" and path == "/v1/alerts":
        return settings.intake_token
    if method == "POST":
        return settings.responder_token
    return settings.responder_token or settings.intake_token


@app.command()
def up(
    sites: SitesOpt = DEFAULT_SITES,
    port: Annotated[int, typer.Option(help="Port of the AxTrace HTTP API.")] = 4280,
    prefect_port: Annotated[int, typer.Option(help="Port of the local Prefect server.")] = 4200,
    demo: Annotated[bool, typer.Option(help="Run `axtrace demo` once everything is up.")] = False,
) -> None:
    """Start everything on one machine: Prefect server (SQLite), site deployments served,
    deadline sweeper and dispatcher, the AxTrace API. Ctrl-C stops it all cleanly."""
    from axtrace import runtime
    from axtrace.ledger.db import upgrade
    from axtrace.sites import apply_sites

    settings = get_settings()
    specs = _checked_sites(sites).specs
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    upgrade(settings.ledger_url)
    seal.ledger_key()  # made now (0600) when none is given, before any process writes
    children: list[Any] = []
    env = dict(os.environ)
    stopping = threading.Event()

    def shutdown(*_: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, shutdown)
    try:
        if not os.environ.get("PREFECT_API_URL"):
            api_url = f"http://127.0.0.1:{prefect_port}/api"
            with console.status(f"Starting the Prefect server on {api_url} (SQLite) ..."):
                server = runtime.start_prefect_server(prefect_port, logs / "prefect-server.log")
                children.append(server)
                runtime.wait_healthy(f"{api_url}/health", timeout=180, proc=server)
            env["PREFECT_API_URL"] = os.environ["PREFECT_API_URL"] = api_url
        from prefect.settings import PREFECT_API_URL, temporary_settings

        # Prefect read its settings at import; point this process at the server just started.
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}), \
                _progress() as progress:
            bar = progress.add_task("Applying sites", total=len(specs))
            apply_sites(sites, progress=lambda _s: progress.advance(bar))
        env["AXTRACE_API_PORT"] = str(port)
        children.append(runtime.start_child(["serve", "--sites", str(sites)],
                                            logs / "serve.log", env))
        intake = runtime.start_child(["intake", "--port", str(port)], logs / "intake.log", env)
        children.append(intake)
        runtime.wait_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=intake)
        with console.status("Waiting until every site is served ..."):
            runtime.wait_served(env["PREFECT_API_URL"], [s.site for s in specs], timeout=180,
                                proc=children[-2])
        _banner(env["PREFECT_API_URL"], port, [s.site for s in specs], logs)
        if demo:
            os.environ["AXTRACE_API_PORT"] = str(port)
            get_settings.cache_clear()
            from axtrace.demo import run_demo

            run_demo(console)
        signal.signal(signal.SIGINT, shutdown)  # from here on Ctrl-C stops the stack in order
        while not stopping.wait(1):
            for child in children:
                if child.poll() is not None:
                    _fail(f"{child.args[2:5]} exited with {child.returncode}; see {logs}")
    except KeyboardInterrupt:
        pass
    finally:
        console.print("Stopping AxTrace ...")
        for child in reversed(children):
            runtime.stop(child)
        console.print("Stopped.")


def _banner(prefect_api: str, port: int, sites: list[str], logs: Path) -> None:
    ui = prefect_api.removesuffix("/api")
    table = Table(title="AxTrace is up", show_header=False)
    table.add_row("Prefect UI", ui)
    table.add_row("AxTrace API", f"http://127.0.0.1:{port}/docs")
    table.add_row("Ledger", get_settings().ledger_url)
    table.add_row("Ledger key", "AXTRACE_LEDGER_KEY" if get_settings().ledger_key
                  else f"{seal.key_path(get_settings())} (keep a copy: verify needs it)")
    table.add_row("Sites", ", ".join(sites))
    table.add_row("Logs", str(logs))
    console.print(table)
    if get_settings().intake_open:
        console.print(Panel(_open_warning(), title="warning", border_style="bold yellow"))
    console.print("Raise an alert: [bold]axtrace raise --site "
                  f"{sites[0]} --title 'Defect on line 3'[/]   Stop: Ctrl-C")


def _open_warning() -> str:
    from axtrace.api import posture_of
    from axtrace.ledger.session import ledger_session

    with ledger_session() as session:
        is_open = posture_of(session, get_settings()).open
    if is_open:
        return ("AxTrace is in OPEN mode: no credential is configured, so anyone who can reach "
                "the API may post, read and act on alerts (every answer carries "
                "X-AxTrace-Open: true). It listens on loopback only. Set AXTRACE_INTAKE_TOKEN "
                "or create a token (`axtrace tokens create NAME`) to close it.")
    return ("The alert intake is OPEN: no intake credential is configured, so anyone who can "
            "reach it may post alerts. It listens on loopback only. Set AXTRACE_INTAKE_TOKEN "
            "(or per-source credentials in AXTRACE_SOURCES) before exposing it.")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


@app.command()
def version() -> None:
    """The package version, and the workflow version each site's deployment must record
    (a hash of every file that decides what a run does; `axtrace verify` checks it)."""
    from axtrace import __version__
    from axtrace.errors import InvalidInput
    from axtrace.sites import project_root
    from axtrace.version import behaviour_files, workflow_version

    try:
        root: Path | None = project_root()
    except InvalidInput:
        root = None  # outside a project folder: the installed code
    typer.echo(f"axtrace {__version__}")
    typer.echo(f"workflow {workflow_version(root)} ({len(behaviour_files(root))} files)")


@app.command()
def serve(sites: SitesOpt = DEFAULT_SITES) -> None:
    """Serve every site deployment from this process (run several for more capacity)."""
    from axtrace.runtime import run_async, serve_sites

    run_async(serve_sites(sites))


@app.command()
def intake(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4280,
    background: Annotated[bool, typer.Option(help="Also run dispatcher and sweeper.")] = True,
) -> None:
    """Serve the AxTrace HTTP API (and, by default, the dispatcher and deadline sweeper)."""
    from axtrace import access
    from axtrace.runtime import run_intake

    try:
        access.serving(intake_credentials=not get_settings().intake_open, host=host)
    except AxTraceError as exc:
        _fail(exc.message)
    if get_settings().intake_open:
        from axtrace.ledger.db import upgrade

        upgrade(get_settings().ledger_url)  # the warning reads the ledger's tokens_required
        err.print(labelled("warning:", "yellow", _open_warning()))
    run_intake(host, port, background=background)


@sites_app.command("apply")
def sites_apply(
    path: Annotated[Path, typer.Argument(help="The sites file.")] = DEFAULT_SITES,
    work_pool: Annotated[str | None, typer.Option(help="Target a work pool.")] = None,
) -> None:
    """Save each site's policy block and create its deployment of respond-to-alert."""
    from axtrace.sites import apply_sites

    specs = _checked_sites(path, ask_prefect=True).specs
    try:
        with _progress() as progress:
            bar = progress.add_task("Applying sites", total=len(specs))
            apply_sites(path, work_pool=work_pool, progress=lambda _s: progress.advance(bar))
    except AxTraceError as exc:
        _fail(exc.message)
    for spec in specs:
        console.print(f"  [green]✓[/] respond-to-alert/{spec.site}  (policy block '{spec.site}')")


FormatOpt = Annotated[str, typer.Option("--format", help="text, or json for CI annotations.")]


@sites_app.command("check")
def sites_check(
    path: Annotated[Path, typer.Argument(help="The sites file.")] = DEFAULT_SITES,
    fmt: FormatOpt = "text",
) -> None:
    """Check a sites file without a server or a database: every error and warning with its
    line; exit 1 on any error. A configured, reachable Prefect server is also asked whether
    the notification blocks exist (a warning when not)."""
    import json

    if fmt not in ("text", "json"):
        _fail(f"--format must be text or json, got {fmt!r}")
    from axtrace.sites import notification_warnings

    checked = _read_sites(path)
    server = notification_warnings(checked)
    problems = sorted([*checked.problems, *(server or [])], key=lambda p: p.line)
    if fmt == "json":
        sys.stdout.write(json.dumps([p.as_dict() for p in problems], indent=2) + "\n")
    else:
        _print_problems(problems)
        if server is None and any(s.policy.notification_block for s in checked.specs):
            err.print("note: no Prefect server configured or reachable; notification blocks "
                      "not looked up", soft_wrap=True)
        errors = len(checked.errors)
        console.print(f"{path}: {len(checked.specs)} sites, {errors} error(s), "
                      f"{len(problems) - errors} warning(s)", soft_wrap=True)
    if checked.errors:
        raise typer.Exit(1)


@sites_app.command("schema")
def sites_schema() -> None:
    """Print the JSON Schema of the sites file (generated from the models) for editors and CI."""
    import json

    from axtrace.sitefile import schema

    sys.stdout.write(json.dumps(schema(), indent=2) + "\n")


@sites_app.command("diff")
def sites_diff(
    path: Annotated[Path, typer.Argument(help="The sites file.")] = DEFAULT_SITES,
    fmt: FormatOpt = "text",
) -> None:
    """Show what `sites apply` would change on the configured Prefect server, per site and
    field; exit 1 when anything would change (2: the file has errors, 3: no server)."""
    import json

    from axtrace.sitediff import sites_diff as changes_of
    from axtrace.sites import reachable_prefect

    if fmt not in ("text", "json"):
        _fail(f"--format must be text or json, got {fmt!r}")
    _checked_sites(path, code=2)
    server = reachable_prefect()
    if server is None:
        _fail("no Prefect server configured or reachable: set PREFECT_API_URL", 3)
    changes = changes_of(path)
    if fmt == "json":
        sys.stdout.write(json.dumps([c.as_dict() for c in changes], indent=2) + "\n")
    else:
        for change in changes:
            console.print(console_text(str(change)), soft_wrap=True)
        console.print(f"{len(changes)} change(s) on {server}" if changes
                      else "No changes: the server has what the file says.", soft_wrap=True)
    if changes:
        raise typer.Exit(1)


def _read_sites(path: Path) -> Checked:
    from axtrace.sites import read_sites

    try:
        return read_sites(path)
    except AxTraceError as exc:
        _fail(exc.message)


def _checked_sites(path: Path, *, ask_prefect: bool = False, code: int = 1) -> Checked:
    """The sites of ``path``, its warnings printed; refused (exit 1) with every error printed
    exactly as ``axtrace sites check`` prints them."""
    from axtrace.sites import notification_warnings

    checked = _read_sites(path)
    server = notification_warnings(checked) if ask_prefect and not checked.errors else None
    _print_problems(sorted([*checked.problems, *(server or [])], key=lambda p: p.line))
    if checked.errors:
        _fail(f"{path}: {len(checked.errors)} error(s); nothing applied", code)
    return checked


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        label, style = ("error:", "bold red") if problem.severity == "error" \
            else ("warning:", "yellow")
        err.print(labelled(label, style, str(problem)), soft_wrap=True)


tokens_app = typer.Typer(help="API tokens: responder or read-only, for every site or some "
                                "(stored hashed).")
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="Who holds it (a responder's name).")],
    site: Annotated[list[str] | None, typer.Option(
        "--site", help="Only this site (repeat for several); default every site.")] = None,
    read_only: Annotated[bool, typer.Option(
        "--read-only", help="May read alerts and reports, not act.")] = False,
) -> None:
    """Create a token for NAME and print it once (only its hash is kept). From the first
    token on, the API needs a token to read and a responder token to act, for good."""
    from axtrace import tokens
    from axtrace.ledger.db import upgrade
    from axtrace.ledger.session import ledger_session
    from axtrace.vocabulary import SITE_SLUG_RE

    problems = [f"--site: not a site slug: {s!r}" for s in site or ()
                if not SITE_SLUG_RE.fullmatch(s)]
    if not name.strip() or len(name) > 200:
        problems.append(f"NAME: 1 to 200 characters, got {len(name)}")
    if problems:
        _fail("; ".join(problems))
    upgrade(get_settings().ledger_url)
    with ledger_session() as session:
        token = tokens.create(session, name, scope="read" if read_only else "respond",
                              sites=site or ())
        session.commit()
    err.print(console_text(f"Token for {name} (shown once; set AXTRACE_RESPONDER_TOKEN "
                           "to use it):"))
    console.print(token)


@tokens_app.command("list")
def tokens_list() -> None:
    """Active tokens: name, scope, sites (the tokens themselves are not kept)."""
    from axtrace import tokens
    from axtrace.ledger.session import ledger_session

    table = Table("name", "scope", "sites", "created (UTC)")
    with ledger_session() as session:
        for row in tokens.active(session):
            table.add_row(console_text(row.name), row.scope,
                          console_text(", ".join(row.sites or ["every site"])),
                          f"{row.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="The responder's name.")]) -> None:
    """Revoke every token of NAME."""
    from axtrace import tokens
    from axtrace.ledger.session import ledger_session

    with ledger_session() as session:
        count = tokens.revoke(session, name)
        session.commit()
    console.print(console_text(f"Revoked {count} token(s) of {name}."))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the ledger schema (Alembic)."""
    from axtrace.ledger.db import upgrade

    upgrade(get_settings().ledger_url)
    console.print(f"Ledger at {get_settings().ledger_url} is up to date.")


@app.command("raise")
def raise_alert(
    site: Annotated[str, typer.Option(help="Site slug.")],
    title: Annotated[str, typer.Option(help="What was detected.")],
    severity: Annotated[str, typer.Option(help="critical, high, medium or low.")] = "high",
    detector: Annotated[str | None, typer.Option(help="Detector (model) name.")] = None,
    key: Annotated[str | None, typer.Option(help="The alert's identity at the detector.")] = None,
) -> None:
    """Raise an alert; prints its id."""
    body = {"site": site, "title": title, "severity": severity, "detector": detector, "key": key}
    accepted = _api("POST", "/v1/alerts", json={k: v for k, v in body.items() if v is not None})
    console.print(accepted["id"])


@app.command()
def ack(
    alert: Annotated[int, typer.Argument(help="Alert id.")],
    as_: Annotated[str, typer.Option("--as", help="Who you are.")],
    note: Annotated[str, typer.Option(help="A note for the trace.")] = "",
) -> None:
    """Acknowledge an alert (only responders at its current or an earlier level may)."""
    result = _api("POST", f"/v1/alerts/{alert}/ack", json={"responder": as_, "note": note})
    console.print(console_text(f"Alert {alert}: {result['status']} by "
                               f"{result['acknowledged_by']} (level {result['level']})"))


@app.command()
def resolve(
    alert: Annotated[int, typer.Argument(help="Alert id.")],
    as_: Annotated[str, typer.Option("--as", help="Who you are.")],
    outcome: Annotated[str, typer.Option(
        help="fixed, false_positive, duplicate or known_issue.")],
    note: Annotated[str, typer.Option(help="A note for the trace.")] = "",
) -> None:
    """Resolve an acknowledged (or ignored) alert with an outcome."""
    body = {"responder": as_, "outcome": outcome, "note": note}
    result = _api("POST", f"/v1/alerts/{alert}/resolve", json=body)
    console.print(console_text(f"Alert {alert}: {result['status']} by "
                               f"{result['resolved_by']} ({outcome})"))


@app.command()
def trace(alert: Annotated[int, typer.Argument(help="Alert id.")]) -> None:
    """Print one alert's timeline."""
    data = _api("GET", f"/v1/alerts/{alert}")
    console.print(trace_heading(data))
    if data.get("flow_run_url"):
        console.print(console_text(f"Prefect run: {data['flow_run_url']}"))
    console.print(trace_table(data["trace"]))


def trace_heading(data: dict[str, Any]) -> Text:
    """The first line of ``axtrace trace``: every field printed as written."""
    return Text.assemble(
        (f"Alert {data['id']}", "bold"),
        console_text(f" at {data['site']}: {data['title']} ({data['severity']}) - "
                     f"{data['status']}, level {data['level']}, owner {data['owner']}"))


def trace_table(trace: list[dict[str, Any]]) -> Table:
    """The timeline of ``axtrace trace``: one row per step, details cut to 120 characters."""
    table = Table("#", "at (UTC)", "step", "actor", "detail")
    for entry in trace:
        detail = ", ".join(f"{k}={v}" for k, v in entry["detail"].items() if v not in (None, ""))
        table.add_row(str(entry["seq"]), console_text(entry["at"][:19].replace("T", " ")),
                      console_text(entry["step"]), console_text(entry["actor"]),
                      console_text(detail[:120]))
    return table


@app.command()
def export(
    since: Annotated[str | None, typer.Option(help="Only steps since: 7d, 24h or a date.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[Path | None, typer.Option(help="File to write (default stdout).")] = None,
) -> None:
    """Export the ledger's trace steps (with their alerts and hashes) for auditors."""
    from axtrace import export as exporter
    from axtrace.ledger.session import ledger_session

    if fmt not in ("jsonl", "csv"):
        _fail(f"--format must be jsonl or csv, got {fmt!r}")
    start = parse_since(since)
    with ledger_session() as session:
        total = exporter.count_steps(session, start)
        if output is None:
            exporter.write(sys.stdout, exporter.rows(session, start), fmt)
            return
        with output.open("w", newline="") as out, _progress() as progress:
            bar = progress.add_task(f"Exporting to {output}", total=total)
            written = exporter.write(out, exporter.rows(session, start), fmt,
                                     lambda: progress.advance(bar))
    err.print(f"{written} steps written to {output}")


def parse_since(value: str | None) -> datetime | None:
    """A duration before now (``7d``, ``24h``, ...) or an ISO date/time; None for everything."""
    from axtrace.reports.period import parse_instant

    if value is None:
        return None
    try:
        return parse_instant(value, anchor=datetime.now(UTC), field="--since")
    except AxTraceError as exc:
        _fail(exc.message)


@app.command()
def demo() -> None:
    """Against a running `axtrace up`: three sites, five alerts each, three behaviours; ends
    with the consistency score, the site the report flags, and where to look next."""
    from axtrace.demo import run_demo

    run_demo(console)


from axtrace.reports.cli import report, verify  # noqa: E402  (light: loads work on demand)

app.command()(report)
app.command()(verify)

from axtrace.policycli import policy_app  # noqa: E402  (light: loads work on demand)

app.add_typer(policy_app, name="policy")


def main() -> None:
    try:
        app()
    except AxTraceError as exc:
        err.print(labelled("error:", "bold red", exc.message))
        sys.exit(exc.exit_code)
