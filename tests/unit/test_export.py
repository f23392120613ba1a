"""Auditors get every step with its alert and hashes, as JSONL or CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sqlmodel import Session
from typer.testing import CliRunner

from axtrace.cli import app
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import AlertCreate, Step


def two_alerts(ledger: str) -> None:
    with Session(engine_for(ledger)) as session:
        for key in ("a", "b"):
            alert = repo.create_alert(session=session, actor="t", alert=AlertCreate(
                site="berlin-plant", key=key, title=f"Alert {key}"))
            repo.append_step(session=session, alert_id=alert.id or 0, step=Step.ASSIGNED,
                             actor="axtrace", detail={"level": 1})
        session.commit()


def test_jsonl_export_has_one_line_per_step_in_alert_and_step_order(ledger: str) -> None:
    two_alerts(ledger)
    result = CliRunner().invoke(app, ["export"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["alert_id"], r["seq"], r["step"]) for r in lines] == [
        (1, 1, "received"), (1, 2, "assigned"), (2, 1, "received"), (2, 2, "assigned")]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert lines[1]["detail"] == {"level": 1}


def test_csv_export_to_a_file_has_a_header_and_the_same_rows(
    ledger: str, tmp_path: Path,
) -> None:
    two_alerts(ledger)
    target = tmp_path / "ledger.csv"
    result = CliRunner().invoke(app, ["export", "--format", "csv", "--output", str(target)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 4
    assert rows[0]["site"] == "berlin-plant"
    assert json.loads(rows[1]["detail"]) == {"level": 1}


def test_export_since_a_future_date_is_empty_and_a_bad_format_is_refused(ledger: str) -> None:
    two_alerts(ledger)
    assert CliRunner().invoke(app, ["export", "--since", "2999-01-01"]).stdout == ""
    bad = CliRunner().invoke(app, ["export", "--format", "xml"])
    assert bad.exit_code == 1


def test_csv_cells_that_would_be_spreadsheet_formulas_start_with_a_quote(
    ledger: str, tmp_path: Path,
) -> None:
    with Session(engine_for(ledger)) as session:
        repo.create_alert(session=session, actor="t", alert=AlertCreate(
            site="berlin-plant", key="=cmd|'/c calc'!A0", title="=HYPERLINK(\"http://x\")",
            detector="@SUM(1+1)"))
        session.commit()
    target = tmp_path / "ledger.csv"
    result = CliRunner().invoke(app, ["export", "--format", "csv", "--output", str(target)])
    assert result.exit_code == 0, result.output
    row = next(csv.DictReader(io.StringIO(target.read_text())))
    assert row["title"] == "'=HYPERLINK(\"http://x\")"
    assert row["key"] == "'=cmd|'/c calc'!A0"
    assert row["detector"] == "'@SUM(1+1)"
    assert row["site"] == "berlin-plant"
    jsonl = json.loads(CliRunner().invoke(app, ["export"]).stdout.splitlines()[0])
    assert jsonl["title"] == "=HYPERLINK(\"http://x\")", "JSONL keeps the value exact"
