"""The shells: ``axtrace report`` / ``axtrace verify`` (Typer) and ``GET /v1/report``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import Session, col
from typer.testing import CliRunner

from axtrace.api import map_errors
from axtrace.ledger.models import TraceEvent
from axtrace.reports.api import router
from axtrace.reports.cli import app
from tests.reports.builder import NOW, T0, Ledger

runner = CliRunner()
PERIOD = ["--since", (T0 - (NOW - T0)).date().isoformat(), "--until", NOW.isoformat()]


def sites_file(tmp_path: Path) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text("sites:\n  alpha: {}\n  beta: {}\n  gamma: {}\n  delta: {}\n")
    return path


def test_report_prints_json_with_the_figures_and_known_sites_without_alerts(
    three: Ledger, tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["report", *PERIOD, "--format", "json",
                                 "--sites", str(sites_file(tmp_path))])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["site"] for s in data["sites"]] == ["alpha", "beta", "delta", "gamma"]
    assert data["sites"][0]["ack_compliance"]["pct"] == 80.0


def test_report_writes_html_csv_and_table_files(three: Ledger, tmp_path: Path) -> None:
    for fmt, needle in (("html", 'id="chart-tta"'), ("csv", "site,raised"),
                        ("table", "Consistency score")):
        out = tmp_path / f"report.{fmt}"
        result = runner.invoke(app, ["report", *PERIOD, "--format", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert needle in out.read_text()


def test_report_filters_name_the_field_they_cannot_use(ledger_url: str) -> None:
    bad_since = runner.invoke(app, ["report", "--since", "7x"])
    assert bad_since.exit_code == 2
    assert "since" in bad_since.output
    bad_severity = runner.invoke(app, ["report", "--severity", "urgent"])
    assert bad_severity.exit_code == 2
    assert "severity" in bad_severity.output
    backwards = runner.invoke(app, ["report", "--since", "2026-03-02", "--until", "2026-03-01"])
    assert "must be before until" in backwards.output


def test_verify_ledger_passes_on_untouched_traces(ledger: Ledger) -> None:
    ledger.alert("alpha", ack=60, resolve=600)
    ledger.alert("beta", escalations=1, ignored=True)
    result = runner.invoke(app, ["verify", "--no-prefect", "--ledger"])
    assert result.exit_code == 0, result.output
    assert "no drift" in result.output


def test_verify_ledger_fails_naming_the_alert_whose_trace_was_edited(
    session: Session, three: Ledger,
) -> None:
    session.exec(update(TraceEvent).where(col(TraceEvent.alert_id) == 2, col(TraceEvent.seq) == 4)
                 .values(actor="mallory"))
    session.commit()
    result = runner.invoke(app, ["verify", "--no-prefect", "--ledger"])
    assert result.exit_code == 1
    assert "alert 2 trace" in result.output
    assert "seq 4" in result.output


class Client:
    """Calls the router in this process (httpx's ASGI transport; no server, no lifespan),
    its errors mapped as the API maps them."""

    def __init__(self) -> None:
        self.api = FastAPI()
        self.api.include_router(router)
        map_errors(self.api)

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.api)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await http.get(path, params=params)

        return asyncio.run(call())


@pytest.fixture
def client(ledger_url: str) -> Client:
    return Client()


def test_the_api_serves_the_same_figures_as_json(three: Ledger, client: Client) -> None:
    response = client.get("/v1/report", params={
        "since": PERIOD[1], "until": PERIOD[3], "site": ["alpha", "gamma"]})
    assert response.status_code == 200, response.text
    data = response.json()
    assert [s["site"] for s in data["sites"]] == ["alpha", "gamma"]
    assert data["sites"][0]["time_to_resolve"]["median_s"] == 1050
    assert data["sites"][1]["ignored_rate"]["pct"] == 66.7


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "yesterday"}, "since"),
    ({"until": "soon"}, "until"),
    ({"since": "2026-03-02", "until": "2026-03-01"}, "since"),
    ({"severity": "urgent"}, "severity"),
    ({"site": "Not A Slug"}, "site"),
])
def test_api_errors_are_422_naming_the_query_field(
    client: Client, params: dict[str, str], field: str,
) -> None:
    response = client.get("/v1/report", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


@given(since=st.text(max_size=30), until=st.none() | st.text(max_size=30),
       site=st.lists(st.text(max_size=20), max_size=3), detector=st.none() | st.text())
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_query_gets_a_server_error(
    client: Client, since: str, until: str | None, site: list[str], detector: str | None,
) -> None:
    params: dict[str, Any] = {"since": since, "site": site}
    params |= {"until": until} if until is not None else {}
    params |= {"detector": detector} if detector is not None else {}
    response = client.get("/v1/report", params)
    assert response.status_code in (200, 422), response.text


@pytest.mark.parametrize("since", [
    "0001-01-01", "99999999999w", "1e400d", "0001-01-01T00:00+14:00"])
def test_far_away_periods_are_clamped_or_refused_not_crashed(client: Client, since: str) -> None:
    response = client.get("/v1/report", {"since": since, "until": "9999-12-31"})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert len(response.json()["weekly"]) == 260


def test_report_prints_names_with_rich_markup_or_escapes_as_written(
    ledger: Ledger, tmp_path: Path,
) -> None:
    ledger.alert("alpha", detector="[/]", version="[bold]2\x1b[2J", ack=60, resolve=600)
    ledger.alert("beta", detector=":warning: [link=http://evil.example]x", ack=60)
    result = runner.invoke(app, ["report", *PERIOD, "--sites", str(sites_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "[/]" in result.stdout
    assert "[bold]2[2J" in result.stdout
    assert "\x1b" not in result.stdout
    out = tmp_path / "report.txt"  # 200 columns wide: names unwrapped
    written = runner.invoke(app, ["report", *PERIOD, "-o", str(out)])
    assert written.exit_code == 0, written.output
    assert ":warning: [link=http://evil.example]x" in out.read_text()
