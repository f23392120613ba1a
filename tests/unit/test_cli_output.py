"""The CLI prints what the ledger holds as text: a title with Rich markup, a responder name
with a terminal escape sequence, an error message quoting either."""

from __future__ import annotations

import pytest
from rich.console import Console
from sqlmodel import Session

from axtrace import api, cli
from axtrace.errors import AxTraceError, Forbidden, InvalidInput, NotFound, Unavailable
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import AlertCreate, Step
from axtrace.ledger.seal import NoLedgerKey
from axtrace.text import labelled

TITLE = "[/] [bold]Crack[link=http://evil.example] :warning: \\"


def printed(*renderables: object) -> str:
    console = Console(record=True, width=300, emoji=False)
    console.print(*renderables)
    return console.export_text()


def test_axtrace_trace_prints_markup_in_titles_and_actors_as_written(ledger: str) -> None:
    with Session(engine_for(ledger)) as session:
        alert = repo.create_alert(session=session, actor="t", dispatch=False, alert=AlertCreate(
            site="berlin-plant", key="k", title=TITLE + "\x1b[2J", detector="[/]"))
        repo.append_step(session=session, alert_id=alert.id or 0, step=Step.REFUSED,
                         actor="[red]mallory\x1b]8;;http://x\x1b\\", detail={"note": "[/]"})
        session.commit()
        data = api.public(session, alert).model_dump(mode="json")  # what `trace` reads
    heading = printed(cli.trace_heading(data))
    assert f"Alert {data['id']} at berlin-plant: {TITLE}" in heading
    assert "\x1b" not in heading
    table = printed(cli.trace_table(data["trace"]))
    assert "[red]mallory]8;;http://x\\" in table
    assert "note=[/]" in table
    assert "\x1b" not in table


def test_error_messages_quoting_markup_print_as_written() -> None:
    line = labelled("error:", "bold red", "the token belongs to 'x', not '[/]'")
    assert printed(line).strip() == "error: the token belongs to 'x', not '[/]'"


@pytest.mark.parametrize(("error", "code"), [
    (InvalidInput("bad", field="x"), 2), (NotFound("none"), 2), (Forbidden("no"), 4),
    (Unavailable("away"), 3), (NoLedgerKey("unreadable"), 3),
])
def test_the_cli_exits_with_the_code_the_error_tree_declares(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: AxTraceError,
    code: int,
) -> None:
    def failing() -> None:
        raise error

    monkeypatch.setattr(cli, "app", failing)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == code
    assert error.message in capsys.readouterr().err
