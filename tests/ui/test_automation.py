"""The example automation in deployments/automations/ works against a real Prefect server.

As shipped it does nothing but mark the ignored alert in the UI; the notification variant its
comments describe is checked too, with a real notification block posting to this test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from axtrace.testing import Stack, wait_until
from tests.ui.prefect_http import prefect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AUTOMATION = Path(__file__).resolve().parents[2] / "deployments/automations/alert-ignored.yaml"


def automations_named(name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = prefect("POST", "/automations/filter", json={}).json()
    return [a for a in found if a["name"] == name]


def prefect_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prefect", *args], env=stack.env,
                          capture_output=True, text=True, timeout=120, check=False)


def events(name: str, resource: str) -> list[dict[str, Any]]:
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    body = {"filter": {"event": {"name": [name]}, "resource": {"id": [resource]},
                       "occurred": {"since": since}}, "limit": 50}
    found: list[dict[str, Any]] = prefect("POST", "/events/filter", json=body).json()["events"]
    return found


def automation_events(automation_ids: list[str]) -> list[tuple[str, Any]]:
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    body = {"filter": {"event": {"prefix": ["prefect.automation."]},
                       "resource": {"id": [f"prefect.automation.{i}" for i in automation_ids]},
                       "occurred": {"since": since}}, "limit": 20}
    found = prefect("POST", "/events/filter", json=body).json()["events"]
    return [(e["event"], e["payload"]) for e in found]


def ignored_alert(stack: Stack, title: str) -> dict[str, Any]:
    """A new alert at gamma, whose two levels have 3 s each: ignored within seconds.

    The title must be new: a repeat of an open alert is only counted on that alert.
    """
    alert_id = stack.raise_alert("gamma", title)
    assert stack.alert(alert_id)["repeat_count"] == 1, f"'{title}' was raised before"
    return stack.wait_for(alert_id, lambda a: a["status"] == "ignored", timeout=120,
                          what="alert ignored")


def documented_notification_action() -> dict[str, Any]:
    """The send-notification action shown in the file's comments, parsed as YAML."""
    text = AUTOMATION.read_text()
    block = re.search(r"^#   actions:\n((?:#     .*\n)+)", text, re.MULTILINE)
    assert block, "the file documents a send-notification action"
    lines = [line[len("#   "):] for line in ("#   actions:\n" + block.group(1)).splitlines()]
    action: dict[str, Any] = yaml.safe_load("\n".join(lines))["actions"][0]
    return action


@pytest.fixture
def created(stack: Stack) -> Iterator[list[str]]:
    """Ids of automations a test creates; deleted afterwards whatever happens."""
    ids: list[str] = []
    yield ids
    for automation_id in ids:
        prefect("DELETE", f"/automations/{automation_id}", missing_ok=True)


def test_the_example_automation_is_created_from_its_file_enabled_and_fires_on_ignored(
    stack: Stack, created: list[str],
) -> None:
    spec = yaml.safe_load(AUTOMATION.read_text())
    result = prefect_cli(stack, "automation", "create", "--from-file", str(AUTOMATION))
    assert result.returncode == 0, result.stdout + result.stderr
    (automation,) = automations_named(spec["name"])
    created.append(automation["id"])
    assert automation["enabled"] is True
    assert automation["trigger"]["expect"] == ["axtrace.alert.ignored"]
    assert automation["trigger"]["match"] == {"prefect.resource.id": "axtrace.alert.*"}
    assert [a["type"] for a in automation["actions"]] == ["do-nothing"]

    alert = ignored_alert(stack, "Forecast drift, no one looks")
    (ignored,) = wait_until(lambda: events("axtrace.alert.ignored", f"axtrace.alert.{alert['id']}"),
                            timeout=60, what="ignored event stored")

    def triggered_by_it() -> bool:
        fired = events("prefect.automation.triggered", f"prefect.automation.{automation['id']}")
        return any(r["prefect.resource.id"] == f"prefect.event.{ignored['id']}"
                   for e in fired for r in e["related"])

    wait_until(triggered_by_it, timeout=60, what="automation triggered by the ignored alert")

    prefect("DELETE", f"/automations/{automation['id']}")
    assert automations_named(spec["name"]) == []


class Inbox(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Inbox.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def inbox_block(stack: Stack) -> Iterator[str]:
    """A webhook receiver on loopback and a Prefect notification block posting to it.

    Yields the block's id; both are gone afterwards.
    """
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    Inbox.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Inbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    block = CustomWebhookNotificationBlock(
        name="axtrace-test-inbox", url=f"http://127.0.0.1:{server.server_address[1]}/hook",
        allow_private_urls=True, json_data={"subject": "{{subject}}", "body": "{{body}}"},
    )
    block_id = block.save("axtrace-test-inbox", overwrite=True)
    try:
        yield str(block_id)
    finally:
        prefect("DELETE", f"/block_documents/{block_id}", missing_ok=True)
        server.shutdown()
        server.server_close()


def test_the_documented_notification_variant_sends_the_alert_and_site(
    stack: Stack, inbox_block: str, created: list[str],
) -> None:
    spec = yaml.safe_load(AUTOMATION.read_text())
    spec["name"] = "axtrace-alert-ignored-notify"
    spec["actions"] = [{**documented_notification_action(), "block_document_id": inbox_block}]
    result = prefect_cli(stack, "automation", "create", "--from-json", json.dumps(spec))
    assert result.returncode == 0, result.stdout + result.stderr
    created.extend(a["id"] for a in automations_named(spec["name"]))

    alert = ignored_alert(stack, "Demand forecast stale, no one looks")

    def message() -> dict[str, Any] | None:
        return next((m for m in Inbox.received
                     if f"alert {alert['id']} at site gamma" in m["body"]), None)

    try:
        got: dict[str, Any] = wait_until(message, timeout=90, what="notification received")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; automation events: {automation_events(created)}") from exc
    assert got["subject"] == f"[AxTrace] alert {alert['id']} at gamma was ignored"
    assert "no one acknowledged" in got["body"]
    assert f"axtrace resolve {alert['id']}" in got["body"]
