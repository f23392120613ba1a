"""The Prefect UI as an operator uses it, in a real browser, against the session's real stack.

Each step is saved as a screenshot in ``test-output/screenshots/`` (see ``browser.py``). The
Prefect UI (its default, "V1" UI) is a Vue app: locators wait for it. Where it offers no role or
label to find a thing by, the test uses Prefect's own CSS classes, named once below.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from axtrace.testing import Stack, wait_until
from tests.ui.browser import SHOTS, TIMEOUT_MS, Shots
from tests.ui.prefect_http import prefect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIELD = ".schema-form-property"  # one field of a form made from a JSON schema
FIELD_LABEL = ".schema-form-property__label"
TYPE_TOGGLE = ".p-button-group"  # "str | None" over an optional field
SELECT = "button.p-select-button__control"
TAB = "li.p-tab"  # the tabs have no tab role
TOAST_CLOSE = ".p-toast__close-btn"
ARTIFACT_VERSION = "a[href^='/artifacts/artifact/']"
OOPS = "Oops. Something went wrong."


# --------------------------------------------------------------------------- helpers


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def prefect_api(path: str) -> Any:
    return prefect("GET", path).json()


def waiting_for(stack: Stack, alert_id: int, phase: str) -> dict[str, Any]:
    """Wait until the alert's run is Suspended waiting for ``phase``; return the alert."""
    def probe() -> dict[str, Any] | None:
        alert = stack.alert(alert_id)
        if not alert["flow_run_id"]:
            return None
        state = prefect_api(f"/flow_runs/{alert['flow_run_id']}")["state"] or {}
        key = (state.get("state_details") or {}).get("pause_key") or ""
        return alert if state.get("type") == "PAUSED" and key.startswith(phase) else None

    found: dict[str, Any] = wait_until(probe, timeout=90, what=f"run waiting for {phase}")
    return found


def field(scope: Any, page: Any, label: str) -> Any:
    """One field of a Prefect schema form, by the start of its label ("title (Optional)")."""
    named = page.locator(FIELD_LABEL, has_text=re.compile(rf"^\s*{label}\b", re.IGNORECASE))
    return scope.locator(FIELD, has=named)


def open_choices(page: Any, form_field: Any) -> Any:
    """Open a choice field and return its options.

    An optional choice renders as a type toggle ("str" | "None") over the select: pick the
    non-None side first. The select is opened from the keyboard: a mouse click on Prefect's
    select button does not open it in headless Chromium 156 (focus + Space does, as for a
    keyboard user).
    """
    expect(form_field).to_be_visible()
    toggle = form_field.locator(TYPE_TOGGLE).get_by_role("button").filter(
        has_not_text=re.compile(r"^\s*None\s*$"))
    for _ in range(3 if toggle.count() else 0):
        toggle.first.click()  # a click while the dialog still settles can be lost: check
        try:
            expect(form_field.locator(SELECT)).to_be_visible(timeout=5_000)
            break
        except AssertionError:
            continue
    form_field.locator(SELECT).focus()
    page.keyboard.press("Space")
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    return options


def choose(page: Any, form_field: Any, value: str) -> None:
    open_choices(page, form_field).filter(has_text=re.compile(rf"^\s*{value}\s*$")).click()
    expect(form_field.locator(SELECT)).to_contain_text(value)


def choices(page: Any, form_field: Any) -> list[str]:
    return [text.strip() for text in open_choices(page, form_field).all_inner_texts()]


def deadline_text(iso: str) -> str:
    """A ledger deadline as the resume form prints it."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")


def persisted(resource: str, event: str) -> None:
    """Wait until Prefect has stored ``event`` about ``resource`` (the feed shows stored ones)."""
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    body = {"filter": {"resource": {"id": [resource]}, "event": {"name": [event]},
                       "occurred": {"since": since}}, "limit": 1}
    wait_until(lambda: prefect("POST", "/events/filter", json=body).json()["events"],
               timeout=60, what=f"{event} stored")


def waiting_log(page: Any, phase: str, alert_id: int) -> Any:
    """The run's one log line saying what it waits for."""
    return page.get_by_text(re.compile(rf"Waiting for {phase} of alert {alert_id}\b")).first


def taken(page: Any, done: Callable[[], bool], oops: Any) -> bool:
    """True once ``done()``, False if the error toast shows first."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not done():
        if oops.is_visible():
            return False
        if time.monotonic() > deadline:
            pytest.fail("the form was neither taken nor refused within 30 s")
        page.wait_for_timeout(250)
    return True


def submit(page: Any, button: Any, done: Callable[[], bool], shot: Shots,
           attempts: int = 3) -> None:
    """Click a form's Submit until ``done()``; retry when the server refused.

    Prefect's Python client retries a 503 (SQLite's "database is locked" while the 2 cores are
    busy); its UI shows "Oops. Something went wrong." instead, and the operator submits again.
    So does this, a few times, keeping a screenshot of each refusal.
    """
    oops = page.get_by_text(OOPS).first  # one toast per failed request
    refusals: list[str] = []

    def note(response: Any) -> None:
        if response.status >= 500:
            refusals.append(f"{response.status} {response.request.method} {response.url}")

    page.on("response", note)
    for attempt in range(1, attempts + 1):
        button.click()
        if taken(page, done, oops):
            page.remove_listener("response", note)
            return
        print(f"attempt {attempt} refused: {refusals}")  # shown when the test fails
        shot.aside(f"server-refused-{attempt}")
        # close every toast at once (they slide while closing, which a click waits out)
        page.evaluate(f"document.querySelectorAll('{TOAST_CLOSE}').forEach(b => b.click())")
        expect(page.get_by_text(OOPS)).to_have_count(0)
    pytest.fail(f"the server refused the form {attempts} times: {refusals}")


def open_run(page: Any, ui_url: str, alert: dict[str, Any]) -> None:
    page.goto(f"{ui_url}/runs/flow-run/{alert['flow_run_id']}")
    expect(page.get_by_text(f"{alert['site']}/{alert['id']}").first).to_be_visible()


def resume_form(page: Any) -> Any:
    page.get_by_role("button", name="Resume", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Resume Flow Run")
    return dialog


# --------------------------------------------------------------------------- tests


def test_an_operator_raises_a_manual_alert_from_the_site_deployment(
    page: Any, stack: Stack, ui_url: str,
) -> None:
    shot = Shots(page, "1-manual-run")
    title = "Smoke seen at press 4"  # no other test raises this title

    page.goto(f"{ui_url}/deployments")
    alpha = page.get_by_role("link", name="alpha", exact=True)
    expect(alpha).to_be_visible()
    shot("deployments")
    alpha.click()
    page.locator(TAB, has_text="Description").click()
    description = page.locator("#description-content")
    expect(description).to_contain_text("Alpha quality")
    expect(description).to_contain_text("alice, bob")
    expect(description).to_contain_text("carol")
    shot("description-owner-and-chain")

    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run", exact=True).click()
    field(page, page, "title").locator("textarea").fill(title)
    choose(page, field(page, page, "severity"), "critical")
    expect(field(page, page, "site").locator("textarea")).to_have_value("alpha")
    shot("custom-run-form", tall=True)
    deployment_page = page.locator(TAB, has_text="Description")
    submit(page, page.get_by_role("button", name="Submit", exact=True),
           deployment_page.is_visible, shot)

    def manual() -> dict[str, Any] | None:
        found = stack.http.get("/v1/alerts", params={"site": "alpha"}).json()
        return next((a for a in found if a["title"] == title and a["flow_run_id"]), None)

    alert: dict[str, Any] = wait_until(manual, timeout=90, what="manual alert in the ledger")
    assert alert["source"] == "manual"
    assert alert["severity"] == "critical"
    deployment = prefect_api("/deployments/name/respond-to-alert/alpha")
    run = prefect_api(f"/flow_runs/{alert['flow_run_id']}")
    assert run["deployment_id"] == deployment["id"]
    assert run["parameters"]["site"] == "alpha"

    waiting_for(stack, alert["id"], "acknowledge")  # named <site>/<id> by now
    page.reload()
    expect(page.get_by_role("link", name=f"alpha/{alert['id']}")).to_be_visible()
    shot("new-run-listed")


def test_an_allowed_responder_acknowledges_and_resolves_from_the_resume_form(
    page: Any, stack: Stack, ui_url: str,
) -> None:
    shot = Shots(page, "2-respond")
    alert_id = stack.raise_alert("alpha", "Crack on press line 3", severity="high",
                                 detector="vision-qa", detector_version="2.1")
    alert = waiting_for(stack, alert_id, "acknowledge")

    open_run(page, ui_url, alert)
    expect(page.get_by_text("Suspended").first).to_be_visible()
    expect(waiting_log(page, "acknowledge", alert_id)).to_be_visible()
    shot("suspended-run", tall=True)
    dialog = resume_form(page)
    expect(dialog).to_contain_text(f"Acknowledge alert {alert_id} at alpha")
    expect(dialog).to_contain_text("Crack on press line 3")
    expect(dialog).to_contain_text("who may answer: alice, bob")
    expect(dialog).to_contain_text(f"Deadline: {deadline_text(alert['ack_deadline'])}")
    responder = field(dialog, page, "responder")
    assert choices(page, responder) == ["alice", "bob"]
    shot("acknowledge-form-choices")
    page.get_by_role("option", name="alice", exact=True).click()
    field(dialog, page, "note").locator("textarea").fill("on my way (from the UI)")
    shot("acknowledge-form-filled")
    submit(page, dialog.get_by_role("button", name="Submit", exact=True),
           lambda: not dialog.is_visible(), shot)

    acked = stack.wait_for(alert_id, lambda a: a["acknowledged_by"] == "alice",
                           what="acknowledged by alice")
    assert acked["status"] == "acknowledged"
    step = next(e for e in acked["trace"] if e["step"] == "acknowledged")
    assert step["actor"] == "alice"
    assert step["detail"]["note"] == "on my way (from the UI)"

    waiting_for(stack, alert_id, "resolve")
    page.reload()
    dialog = resume_form(page)
    expect(dialog).to_contain_text(f"Resolve alert {alert_id} at alpha")
    choose(page, field(dialog, page, "responder"), "alice")
    outcomes = choices(page, field(dialog, page, "outcome"))
    assert {"fixed", "false_positive"} <= set(outcomes)
    page.get_by_role("option", name="fixed", exact=True).click()
    shot("resolve-form-filled")
    submit(page, dialog.get_by_role("button", name="Submit", exact=True),
           lambda: not dialog.is_visible(), shot)

    closed = stack.wait_for(alert_id, lambda a: a["status"] == "closed", what="closed")
    assert closed["resolved_by"] == "alice"
    assert closed["outcome"] == "fixed"

    def completed() -> bool:
        run = prefect_api(f"/flow_runs/{alert['flow_run_id']}")
        return bool(run["state"]["type"] == "COMPLETED")

    wait_until(completed, timeout=60, what="run completed (its last artifact published)")
    page.goto(f"{ui_url}/artifacts/key/alert-{alert_id}")
    page.locator(ARTIFACT_VERSION).first.click()  # the newest version is listed first
    trace = page.locator("table")
    expect(trace).to_contain_text("acknowledged")
    expect(trace).to_contain_text("alice")
    expect(trace).to_contain_text("closed")
    shot("artifact-trace")


def test_someone_not_allowed_cannot_answer_and_the_run_keeps_waiting(
    page: Any, stack: Stack, ui_url: str,
) -> None:
    shot = Shots(page, "3-refused")
    alert_id = stack.raise_alert("alpha", "Label misprint on pallet 7")
    alert = waiting_for(stack, alert_id, "acknowledge")

    open_run(page, ui_url, alert)
    dialog = resume_form(page)
    responder = field(dialog, page, "responder")
    offered = choices(page, responder)
    assert "carol" not in offered, "level 2 may not answer while the alert is at level 1"
    assert "mallory" not in offered
    page.get_by_placeholder("Search").fill("mallory")
    expect(page.get_by_role("option")).to_have_count(0)
    shot("no-mallory-in-the-choice")

    refused = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "mallory"})
    assert refused.status_code == 403, refused.text
    assert "mallory" in refused.json()["detail"][0]["msg"]

    still = waiting_for(stack, alert_id, "acknowledge")
    assert still["status"] == "open"
    assert still["trace"][-1]["step"] == "refused"
    assert still["trace"][-1]["actor"] == "mallory"
    page.reload()
    expect(page.get_by_text("Suspended").first).to_be_visible()
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    expect(waiting_log(page, "acknowledge", alert_id)).to_be_visible()
    shot("still-suspended", tall=True)

    persisted(f"axtrace.alert.{alert_id}", "axtrace.alert.refused")
    page.goto(f"{ui_url}/events?resource=axtrace.alert.{alert_id}")
    refusal = page.get_by_text("axtrace.alert.refused", exact=True)
    expect(refusal.first).to_be_visible()
    shot("refusal-in-the-event-feed")

    # leave nothing escalating behind for the tests after this one
    assert stack.http.post(f"/v1/alerts/{alert_id}/ack",
                           json={"responder": "bob"}).status_code == 200


def some_closed_alert(stack: Stack) -> None:
    """Make sure the ledger holds one finished response (when this test runs alone)."""
    if any(a["status"] == "closed" for a in stack.http.get("/v1/alerts").json()):
        return
    alert_id = stack.raise_alert("delta", "Freezer door ajar (for the report)")
    waiting_for(stack, alert_id, "acknowledge")
    stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "heidi"}).raise_for_status()
    waiting_for(stack, alert_id, "resolve")
    stack.http.post(f"/v1/alerts/{alert_id}/resolve",
                    json={"responder": "heidi", "outcome": "fixed"}).raise_for_status()
    stack.wait_for(alert_id, lambda a: a["status"] == "closed", what="closed")


def test_the_html_report_shows_its_charts(page: Any, stack: Stack, tmp_path: Path) -> None:
    some_closed_alert(stack)
    out = tmp_path / "report.html"
    stack.axtrace("report", "--format", "html", "--sites", str(stack.sites), "--output", str(out))

    page.goto(out.as_uri())
    charts = page.locator("svg")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 3, "time to acknowledge, deadline compliance, weekly trend"
    for chart in charts.all():
        assert chart.locator("rect, line, path, circle, polyline").count(), "an empty chart"
    expect(page.get_by_text("alpha").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "4-report-01-html.png"), full_page=True)
