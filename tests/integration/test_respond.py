"""The standard response, end to end, against a real Prefect server and real processes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from axtrace.testing import Stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HAPPY = ["received", "assigned", "notified", "acknowledged", "resolved", "closed"]


def notified_at(level: int) -> Any:
    return lambda a: any(e["step"] == "notified" and e["detail"]["level"] == level
                         for e in a["trace"])


def prefect() -> Any:
    from prefect import get_client

    return get_client(sync_client=True)


def run_state(run_id: str) -> Any:
    with prefect() as client:
        return client.read_flow_run(run_id)


def waiting(stack: Stack, alert_id: int, phase: str) -> dict[str, Any]:
    """Wait until the alert's run is suspended waiting for ``phase``."""
    def probe() -> dict[str, Any] | None:
        alert = stack.alert(alert_id)
        if not alert["flow_run_id"]:
            return None
        state = run_state(alert["flow_run_id"]).state
        key = state.state_details.pause_key if state else None
        return alert if state and state.is_paused() and (key or "").startswith(phase) else None

    result: dict[str, Any] = wait_until(probe, timeout=90, what=f"run waiting for {phase}")
    return result


def form_saved(run_id: str) -> None:
    """Wait until the paused run has saved its Resume form. Prefect marks a run paused before
    it saves the form; a serving process killed in between leaves a run no one can resume."""
    from uuid import UUID

    def probe() -> Any:
        with prefect() as client:
            keyset = client.read_flow_run(run_id).state.state_details.run_input_keyset or {}
            return keyset and client.filter_flow_run_input(
                flow_run_id=UUID(run_id), key_prefix=keyset["schema"], limit=1,
                exclude_keys=set())

    wait_until(probe, timeout=30, what="the paused run's Resume form saved")


def events_of(alert_id: int, expected: int) -> list[dict[str, Any]]:
    url = os.environ["PREFECT_API_URL"] + "/events/filter"
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    def probe() -> list[dict[str, Any]] | None:
        body = {"filter": {"resource": {"id": [f"axtrace.alert.{alert_id}"]},
                           "occurred": {"since": since}}, "limit": 50}
        found: list[dict[str, Any]] = httpx.post(url, json=body, timeout=10).json()["events"]
        return found if len(found) >= expected else None

    result: list[dict[str, Any]] = wait_until(probe, timeout=30, what="events persisted")
    return result


def test_owner_acknowledges_and_resolves_and_the_trace_is_complete(stack: Stack) -> None:
    alert_id = stack.raise_alert("alpha", "Crack on line 3", severity="critical",
                                 detector="vision-qa", detector_version="2.1")
    waiting(stack, alert_id, "acknowledge")

    acked = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "alice"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    waiting(stack, alert_id, "resolve")
    resolved = stack.http.post(f"/v1/alerts/{alert_id}/resolve",
                               json={"responder": "alice", "outcome": "fixed", "note": "die"})
    assert resolved.status_code == 200, resolved.text

    alert = stack.wait_for(alert_id, lambda a: a["status"] == "closed")
    assert [e["step"] for e in alert["trace"]] == HAPPY
    assert [e["seq"] for e in alert["trace"]] == list(range(1, 7))
    assert alert["acknowledged_by"] == "alice"
    assert alert["outcome"] == "fixed"
    assert alert["owner"] == "Alpha quality"
    assert alert["level"] == 1
    assert alert["policy_version"]
    assert alert["workflow_version"]

    run = wait_until(lambda: (r := run_state(alert["flow_run_id"])).state.is_completed() and r,
                     timeout=60, what="the run completed after closing the alert")
    assert run.name == f"alpha/{alert_id}"
    assert {"site:alpha", "severity:critical"} <= set(run.tags)

    names = {e["event"] for e in events_of(alert_id, expected=len(HAPPY))}
    assert names == {f"axtrace.alert.{step}" for step in HAPPY}
    assert seal_findings(alert_id) == [], "every writer (intake, run, API) sealed what it wrote"


def seal_findings(alert_id: int) -> list[Any]:
    """What ``verify --ledger`` says of this alert's keyed seals, read from the stack's ledger
    with the key every process of the stack shares (``$AXTRACE_HOME/ledger.key``)."""
    from sqlmodel import Session

    from axtrace.ledger import repo
    from axtrace.ledger.db import engine_for
    from axtrace.ledger.seal import ledger_key
    from axtrace.reports.verify import check_seals, verify_ledger
    from axtrace.settings import get_settings

    key = ledger_key(create=False)
    assert key is not None
    with Session(engine_for(get_settings().ledger_url)) as session:
        alert = repo.get_alert(session=session, alert_id=alert_id)
        found = check_seals(alert, repo.trace_of(session=session, alert_id=alert_id), key)
        deleted = [f for f in verify_ledger(session) if f.found.startswith("deleted")]
    return found + deleted


def test_the_prefect_ui_form_and_the_api_end_in_the_same_flow_input(stack: Stack) -> None:
    """The UI resumes the run with the form's values; that is all resume_flow_run does."""
    alert_id = stack.raise_alert("alpha", "Vibration on spindle 2")
    alert = waiting(stack, alert_id, "acknowledge")
    with prefect() as client:
        result = client.resume_flow_run(alert["flow_run_id"], run_input={"responder": "bob"})
    assert result.status.value == "ACCEPT"
    stack.wait_for(alert_id, lambda a: a["status"] == "acknowledged")
    alert = waiting(stack, alert_id, "resolve")
    with prefect() as client:
        refused = client.resume_flow_run(alert["flow_run_id"],
                                         run_input={"responder": "mallory",
                                                    "outcome": "fixed"})
        assert refused.status.value == "REJECT"  # not a choice of the form: Prefect refuses
        client.resume_flow_run(alert["flow_run_id"],
                               run_input={"responder": "bob", "outcome": "false_positive"})
    closed = stack.wait_for(alert_id, lambda a: a["status"] == "closed")
    assert closed["acknowledged_by"] == "bob"
    assert closed["outcome"] == "false_positive"


def test_someone_outside_the_chain_is_refused_recorded_and_the_run_still_waits(
    stack: Stack,
) -> None:
    alert_id = stack.raise_alert("alpha", "Label misprint")
    waiting(stack, alert_id, "acknowledge")

    refused = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "mallory"})
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["loc"] == ["body", "responder"]
    assert "mallory" in refused.json()["detail"][0]["msg"]
    too_early = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "carol"})
    assert too_early.status_code == 403, "level 2 may not act while the alert is at level 1"

    alert = waiting(stack, alert_id, "acknowledge")
    assert [e["step"] for e in alert["trace"]][-2:] == ["refused", "refused"]
    assert alert["trace"][-1]["actor"] == "carol"
    assert alert["status"] == "open"

    cli = stack.axtrace("ack", str(alert_id), "--as", "bob", "--note", "on my way")
    assert "acknowledged by bob" in cli.stdout
    assert stack.alert(alert_id)["trace"][-1]["detail"]["note"] == "on my way"


def test_acknowledge_deadline_escalates_to_level_two_which_acknowledges(stack: Stack) -> None:
    alert_id = stack.raise_alert("beta", "Freezer warming")
    alert = stack.wait_for(alert_id, notified_at(2), what="escalation to level 2")
    steps = [e["step"] for e in alert["trace"]]
    assert steps == ["received", "assigned", "notified", "escalated", "notified"]
    escalated = alert["trace"][3]["detail"]
    assert escalated["from_level"] == 1
    assert escalated["to_level"] == 2
    assert escalated["responders"] == ["erin"]

    waiting(stack, alert_id, "acknowledge")
    acked = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "erin"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["level"] == 2
    assert acked.json()["acknowledged_by"] == "erin"
    # level 1 may still act on an escalated alert: dave resolves it
    waiting(stack, alert_id, "resolve")
    done = stack.http.post(f"/v1/alerts/{alert_id}/resolve",
                           json={"responder": "dave", "outcome": "known_issue"})
    assert done.status_code == 200, done.text


def test_every_level_passing_marks_the_alert_ignored_and_it_stays_open_for_resolution(
    stack: Stack,
) -> None:
    alert_id = stack.raise_alert("gamma", "Forecast drift")
    alert = stack.wait_for(alert_id, lambda a: a["status"] == "ignored", timeout=120)
    assert [e["step"] for e in alert["trace"]] == [
        "received", "assigned", "notified", "escalated", "notified", "ignored"]

    waiting(stack, alert_id, "resolve")
    late_ack = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "frank"})
    assert late_ack.status_code == 409
    resolved = stack.http.post(f"/v1/alerts/{alert_id}/resolve",
                               json={"responder": "frank", "outcome": "false_positive"})
    assert resolved.status_code == 200, resolved.text
    closed = stack.wait_for(alert_id, lambda a: a["status"] == "closed")
    assert closed["acknowledged_by"] is None
    assert closed["outcome"] == "false_positive"


def test_serving_process_restart_loses_nothing_and_late_deadlines_fire(stack: Stack) -> None:
    alert_id = stack.raise_alert("beta", "Conveyor stall")
    alert = waiting(stack, alert_id, "acknowledge")
    form_saved(alert["flow_run_id"])
    stack.stop_serve(kill=True)
    try:
        wait_until(lambda: datetime.fromisoformat(alert["ack_deadline"]) + timedelta(seconds=4)
                   < datetime.now(UTC), timeout=30, what="deadline passed during the outage")
        assert stack.alert(alert_id)["level"] == 1, "nothing escalates while no one runs it"
    finally:
        stack.start_serve()
    alert = stack.wait_for(alert_id, notified_at(2), what="escalation after the restart")
    escalated = next(e for e in alert["trace"] if e["step"] == "escalated")
    assert escalated["detail"]["late_by_s"] >= 4

    with prefect() as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=["site:beta"])))
    mine = [r for r in runs if r.name == f"beta/{alert_id}"]
    assert len(mine) == 1, "one run for the alert, before and after the restart"
    assert str(mine[0].id) == alert["flow_run_id"]


def acknowledged_by_judy(stack: Stack, title: str) -> dict[str, Any]:
    """An epsilon alert acknowledged at level 1, its run waiting for the resolution."""
    alert_id = stack.raise_alert("epsilon", title, key=title)
    waiting(stack, alert_id, "acknowledge")
    acked = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "judy"})
    assert acked.status_code == 200, acked.text
    return waiting(stack, alert_id, "resolve")


def test_resolve_deadline_escalates_reminds_ends_overdue_and_the_alert_stays_resolvable(
    stack: Stack,
) -> None:
    alert_id = acknowledged_by_judy(stack, "Sealer temperature drifting")["id"]

    alert = stack.wait_for(alert_id, notified_at(2), what="resolve escalation to level 2")
    escalated = next(e for e in alert["trace"] if e["step"] == "escalated")
    assert escalated["detail"]["reason"] == "resolve deadline passed"
    assert escalated["detail"]["late_by_s"] is not None
    assert (escalated["detail"]["from_level"], escalated["detail"]["to_level"]) == (1, 2)
    assert alert["status"] == "acknowledged"
    assert alert["acknowledged_by"] == "judy"

    alert = stack.wait_for(alert_id, lambda a: a["overdue_at"] is not None, timeout=120,
                           what="the last level's resolve deadline marks it overdue")
    steps = [e["step"] for e in alert["trace"]]
    assert steps[:7] == ["received", "assigned", "notified", "acknowledged", "escalated",
                         "notified", "reminded"], "level 2 is reminded every 4 s"
    assert steps[-1] == "overdue"
    assert set(steps[6:-1]) == {"reminded"}
    assert alert["level"] == 2
    assert alert["status"] == "acknowledged", "overdue is a mark, not a status: still open"

    waiting(stack, alert_id, "resolve")
    resolved = stack.http.post(f"/v1/alerts/{alert_id}/resolve",
                               json={"responder": "kim", "outcome": "fixed"})
    assert resolved.status_code == 200, resolved.text
    closed = stack.wait_for(alert_id, lambda a: a["status"] == "closed")
    assert [e["step"] for e in closed["trace"]].count("escalated") == 1, "nothing past level 2"
    assert closed["resolved_by"] == "kim"
    assert seal_findings(alert_id) == []


def test_serving_process_restart_with_a_resolve_deadline_pending_still_fires_it(
    stack: Stack,
) -> None:
    alert = acknowledged_by_judy(stack, "Carton glue starved")
    assert alert["level"] == 1, "acknowledged before its resolve deadline"
    form_saved(alert["flow_run_id"])
    stack.stop_serve(kill=True)
    try:
        deadline = datetime.fromisoformat(alert["resolve_deadline"])
        wait_until(lambda: deadline + timedelta(seconds=4) < datetime.now(UTC), timeout=60,
                   what="resolve deadline passed during the outage")
        assert stack.alert(alert["id"])["level"] == 1, "nothing escalates while no one runs it"
    finally:
        stack.start_serve()
    after = stack.wait_for(alert["id"], notified_at(2), what="escalation after the restart")
    escalated = next(e for e in after["trace"] if e["step"] == "escalated")
    assert escalated["detail"]["reason"] == "resolve deadline passed"
    assert escalated["detail"]["late_by_s"] >= 4


def test_policy_edited_while_an_alert_is_open_does_not_change_its_chain(stack: Stack) -> None:
    from axtrace_blocks import OwnershipPolicy

    first = stack.raise_alert("delta", "Door left open")
    before = waiting(stack, first, "acknowledge")
    original = OwnershipPolicy.load("delta")
    edited = original.model_copy(deep=True)
    edited.escalation_chain[0].responders = ["ivan"]
    edited.save("delta", overwrite=True)
    try:
        second = stack.raise_alert("delta", "Door left open again", key="door-2")
        after = waiting(stack, second, "acknowledge")
        assert after["policy_version"] != before["policy_version"]
        assert stack.http.post(f"/v1/alerts/{first}/ack",
                               json={"responder": "ivan"}).status_code == 403
        assert stack.http.post(f"/v1/alerts/{first}/ack",
                               json={"responder": "heidi"}).status_code == 200
        assert stack.http.post(f"/v1/alerts/{second}/ack",
                               json={"responder": "heidi"}).status_code == 403
        assert stack.http.post(f"/v1/alerts/{second}/ack",
                               json={"responder": "ivan"}).status_code == 200
        assert stack.alert(first)["policy_version"] == before["policy_version"]
    finally:
        original.save("delta", overwrite=True)


def test_sites_run_the_same_deployment_version_and_differ_only_by_parameters(
    stack: Stack,
) -> None:
    with prefect() as client:
        deployments = {d.name: d for d in client.read_deployments()
                       if d.name in {"alpha", "beta", "gamma", "delta"}}
    assert len(deployments) == 4
    assert len({d.version for d in deployments.values()}) == 1
    assert len({d.entrypoint for d in deployments.values()}) == 1
    assert len({d.flow_id for d in deployments.values()}) == 1
    assert {name: d.parameters for name, d in deployments.items()} == {
        name: {"site": name} for name in deployments}
    assert all(f"site:{name}" in d.tags for name, d in deployments.items())


def test_a_run_started_by_hand_from_the_ui_records_a_manual_alert(stack: Stack) -> None:
    with prefect() as client:
        deployment = client.read_deployment_by_name("respond-to-alert/alpha")
        run = client.create_flow_run_from_deployment(
            deployment.id, parameters={"title": "Operator saw smoke", "severity": "critical"})

    def manual() -> dict[str, Any] | None:
        found = stack.http.get("/v1/alerts", params={"site": "alpha"}).json()
        return next((a for a in found if a["flow_run_id"] == str(run.id)), None)

    alert = wait_until(manual, timeout=90, what="manual alert recorded")
    assert alert["source"] == "manual"
    assert alert["severity"] == "critical"
    assert alert["title"] == "Operator saw smoke"
    waiting(stack, alert["id"], "acknowledge")
    assert run_state(str(run.id)).name == f"alpha/{alert['id']}"


def test_unknown_site_and_bad_fields_are_clear_4xx_naming_the_field(stack: Stack) -> None:
    unknown = stack.http.post("/v1/alerts", json={"site": "nowhere", "title": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["loc"] == ["body", "site"]
    assert "nowhere" in unknown.json()["detail"][0]["msg"]

    bad = stack.http.post("/v1/alerts", json={"site": "alpha", "title": "x",
                                              "severity": "urgent"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "severity"]

    missing = stack.http.get("/v1/alerts/999999")
    assert missing.status_code == 404

    cli = stack.axtrace("raise", "--site", "nowhere", "--title", "x", check=False)
    assert cli.returncode != 0
    assert "unknown site 'nowhere'" in cli.stderr
