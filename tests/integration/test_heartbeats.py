"""The dead-man switch end to end, on a stack of its own (real Prefect server, serving process,
AxTrace API with its sweeper, SQLite ledger), with heartbeat windows of seconds: a silent
detector raises one alert and one respond-to-alert run however many sweeps see it, its next
heartbeat (the API's, or Alertmanager's Watchdog) resolves it at the source, and a restart of
the serving process while a detector is silent still raises exactly one alert.

Its own stack because every detector here is silent a few seconds after it starts: the
session's ledger must not fill with silences."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from axtrace.testing import Stack, free_port, wait_until
from tests.intake.support import load
from tests.integration.test_intake import post_to_alertmanager, require

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SITES = Path(__file__).parents[1] / "data" / "heartbeats.yaml"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="axtrace-heartbeats-"))
    with Stack.start(workdir, sites=SITES) as running:
        yield running


def silences(stack: Stack, site: str) -> list[dict[str, Any]]:
    listed = stack.http.get("/v1/alerts", params={"site": site}).json()
    return sorted((a for a in listed if a["source"] == "heartbeat"), key=lambda a: a["id"])


def runs(stack: Stack, site: str) -> int:
    """Flow runs of ``site`` on the stack's own Prefect server."""
    answer = httpx.post(f"{stack.env['PREFECT_API_URL']}/flow_runs/filter", timeout=30,
                        json={"flow_runs": {"tags": {"all_": [f"site:{site}"]}}})
    answer.raise_for_status()
    return len(answer.json())


def heartbeat(stack: Stack, site: str, detector: str) -> dict[str, Any]:
    answer = stack.http.post("/v1/heartbeats", json={"site": site, "detector": detector})
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


def started(stack: Stack, alert: dict[str, Any]) -> dict[str, Any]:
    """The alert once its run assigned it (so its run exists and waits)."""
    return stack.wait_for(alert["id"], lambda a: a["level"] == 1 and a["flow_run_id"],
                          timeout=120, what="the silence's run assigning it")


def open_silence(stack: Stack, site: str) -> dict[str, Any]:
    """The silence of ``site`` no heartbeat has ended yet, once its run assigned it."""
    def probe() -> list[dict[str, Any]]:
        return [a for a in silences(stack, site) if a["source_resolved_at"] is None]

    [alert] = wait_until(probe, timeout=60, what=f"an open silence at {site}")
    return started(stack, alert)


def restart_api(stack: Stack) -> None:
    from axtrace.runtime import stop

    stop(stack.intake_proc)
    stack.start_intake()


def test_a_silent_detector_raises_one_alert_and_run_and_its_heartbeat_resolves_it(
    stack: Stack,
) -> None:
    [alert] = wait_until(lambda: silences(stack, "hb-api"), timeout=60, what="a silence alert")
    assert alert["title"] == "detector seam-vision silent at hb-api"
    assert (alert["detector"], alert["site"]) == ("seam-vision", "hb-api")
    started(stack, alert)

    time.sleep(4)  # eight sweeps of 0.5 s, all seeing the same silence
    assert [a["id"] for a in silences(stack, "hb-api")] == [alert["id"]]
    assert runs(stack, "hb-api") == 1

    assert heartbeat(stack, "hb-api", "seam-vision")["resolving"] == alert["id"]
    closed = stack.wait_for(alert["id"], lambda a: a["status"] == "closed", timeout=90,
                            what="the silence resolved at the source")
    assert closed["outcome"] == "resolved_at_source"
    assert "resolved" in [step["step"] for step in closed["trace"]]
    verified = stack.axtrace("verify", "--ledger", "--sites", str(SITES), check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_alertmanagers_watchdog_is_the_heartbeat_that_resolves_its_silence(
    stack: Stack,
) -> None:
    alert = open_silence(stack, "hb-watch")
    assert alert["title"] == "detector alertmanager silent at hb-watch"
    watchdog = load("alertmanager_watchdog.json")
    watchdog["commonLabels"]["site"] = "hb-watch"
    watchdog["alerts"] = watchdog["alerts"][:1]  # no detector label: alertmanager's own
    watchdog["alerts"][0]["labels"]["site"] = "hb-watch"

    answer = stack.http.post("/v1/alerts/alertmanager", json=watchdog)

    assert answer.status_code == 202, answer.text
    [beat] = answer.json()["alerts"]
    assert (beat["status"], beat["detector"], beat["resolving"]) == (
        "heartbeat", "alertmanager", alert["id"])
    closed = stack.wait_for(alert["id"], lambda a: a["status"] == "closed", timeout=90)
    assert closed["outcome"] == "resolved_at_source"


def test_a_restart_while_a_detector_is_silent_raises_exactly_one_alert(stack: Stack) -> None:
    heartbeat(stack, "hb-restart", "line-camera")
    before = {a["id"] for a in silences(stack, "hb-restart")}
    from axtrace.runtime import stop

    stop(stack.intake_proc)  # the sweeper with it
    time.sleep(6)  # the 4 s window passes while nothing checks
    stack.start_intake()

    def new() -> list[dict[str, Any]]:
        return [a for a in silences(stack, "hb-restart") if a["id"] not in before]

    [alert] = wait_until(new, timeout=60, what="the silence raised after the restart")
    started(stack, alert)
    restart_api(stack)  # again, with the alert raised: it is not raised twice
    time.sleep(3)

    assert [a["id"] for a in new()] == [alert["id"]]
    everything = silences(stack, "hb-restart")
    for each in everything:
        started(stack, each)
    assert runs(stack, "hb-restart") == len(everything)


@pytest.fixture
def alertmanager(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager that notifies the stack's intake (Debian's prometheus-alertmanager)."""
    from axtrace.runtime import stop, wait_healthy

    binary = require("prometheus-alertmanager")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route: {{receiver: axtrace, group_by: [alertname, site], group_wait: 1s, repeat_interval: 1h}}
receivers:
  - name: axtrace
    webhook_configs:
      - url: http://127.0.0.1:{stack.api_port}/v1/alerts/alertmanager
""")
    with (tmp_path / "am.log").open("ab") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/-/ready", timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def test_a_real_alertmanagers_watchdog_resolves_the_silence(
    stack: Stack, alertmanager: str,
) -> None:
    alert = open_silence(stack, "hb-watch")

    post_to_alertmanager(alertmanager, [{"labels": {
        "alertname": "Watchdog", "severity": "none", "site": "hb-watch"},
        "annotations": {"summary": "An alert that should always be firing."}}])

    closed = stack.wait_for(alert["id"], lambda a: a["status"] == "closed", timeout=90,
                            what="the silence resolved by the Watchdog")
    assert closed["outcome"] == "resolved_at_source"
