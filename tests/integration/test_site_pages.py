"""A site's page against a real Prefect server and the stack's ledger: the policy comes from the
site's policy block (what the next alert pins), the alerts move with their response."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from axtrace import ownership
from axtrace.testing import Stack, wait_until
from axtrace_blocks import OwnershipPolicy
from tests.integration.test_respond import waiting

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def page(stack: Stack, site: str) -> dict[str, Any]:
    answer = stack.http.get(f"/v1/sites/{site}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def block_version(site: str) -> str:
    return ownership.version(ownership.snapshot(OwnershipPolicy.load(site)))


def test_the_pages_show_each_sites_policy_block_as_applied(stack: Stack) -> None:
    listed = {s["site"]: s for s in stack.http.get("/v1/sites").json()}
    assert {"alpha", "beta", "gamma", "delta"} <= set(listed)
    assert listed["alpha"]["policy_version"] == block_version("alpha")
    assert listed["alpha"]["owning_team"] == "Alpha quality"
    alpha = page(stack, "alpha")
    assert (alpha["policy"]["source"], alpha["policy"]["on_record"]) == ("prefect", True)
    assert [(lv["name"], lv["on_call"]["names"]) for lv in alpha["policy"]["levels"]] == [
        ("Line lead", ["alice", "bob"]), ("Manager", ["carol"])]
    last = alpha["last_policy_change"]
    assert (last["origin"], last["new_version"]) == ("sites apply", block_version("alpha"))


def test_an_alert_is_on_its_sites_page_with_its_level_and_deadlines_until_resolved(
    stack: Stack,
) -> None:
    alert_id = stack.raise_alert("alpha", "Scratch on lens 2", key="site-page-1")
    alert = waiting(stack, alert_id, "acknowledge")
    shown = next(a for a in page(stack, "alpha")["open_alerts"] if a["id"] == alert_id)
    assert (shown["status"], shown["level"], shown["level_name"], shown["may_act"]) == (
        "open", 1, "Line lead", ["alice", "bob"])
    assert datetime.fromisoformat(shown["ack_deadline"]) == datetime.fromisoformat(
        alert["ack_deadline"])
    assert shown["policy_version"] == alert["policy_version"]
    assert stack.http.post(f"/v1/alerts/{alert_id}/ack",
                           json={"responder": "alice"}).status_code == 200
    shown = next(a for a in page(stack, "alpha")["open_alerts"] if a["id"] == alert_id)
    assert (shown["status"], shown["acknowledged_by"], shown["ack_deadline"]) == (
        "acknowledged", "alice", None)
    assert shown["resolve_deadline"] is not None
    waiting(stack, alert_id, "resolve")
    assert stack.http.post(f"/v1/alerts/{alert_id}/resolve", json={
        "responder": "alice", "outcome": "fixed"}).status_code == 200
    wait_until(lambda: alert_id not in [a["id"] for a in page(stack, "alpha")["open_alerts"]],
               timeout=30, what="the resolved alert leaving the page")


def test_a_policy_edited_on_the_server_shows_at_once_not_yet_on_record(stack: Stack) -> None:
    before = page(stack, "delta")
    original = OwnershipPolicy.load("delta")
    edited = original.model_copy(deep=True)
    edited.escalation_chain[0].responders = ["ivan"]
    edited.save("delta", overwrite=True)
    try:
        after = page(stack, "delta")
    finally:
        original.save("delta", overwrite=True)
    edited_version = ownership.version(ownership.snapshot(edited))
    assert after["policy"]["version"] == edited_version != before["policy"]["version"]
    assert after["policy"]["levels"][0]["on_call"]["names"] == ["ivan"]
    assert after["policy"]["on_record"] is False, "the auditor records it after a minute"
    assert after["last_policy_change"] == before["last_policy_change"]
    assert page(stack, "delta")["policy"]["version"] == before["policy"]["version"]
