"""``verify`` and the ``site-report`` flow against the session's real Prefect server.

Every test that changes the server by hand puts it back with ``stack.apply_sites()`` before it
ends: the server is shared with the other integration tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from axtrace import policyhistory
from axtrace.reports.cli import app
from axtrace.reports.verify import Drift, verify_sites
from axtrace.testing import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SITES = Path(__file__).parents[1] / "data" / "sites.yaml"
ROOT = Path(__file__).parents[2]


def prefect() -> Any:
    from prefect import get_client

    return get_client(sync_client=True)


def deployment(site: str) -> Any:
    with prefect() as client:
        return client.read_deployment_by_name(f"respond-to-alert/{site}")


def update(site: str, **fields: Any) -> None:
    from prefect.client.schemas.actions import DeploymentUpdate

    with prefect() as client:
        client.update_deployment(deployment(site).id, DeploymentUpdate(**fields))


@pytest.fixture(scope="module")
def applied(stack: Stack) -> Stack:
    """A clean apply of the test sites, so the deployments match the code on disk now."""
    stack.apply_sites()
    return stack


@pytest.fixture
def restore(applied: Stack) -> Iterator[Stack]:
    """Whatever the test changes on the server, a fresh apply puts it back."""
    try:
        yield applied
    finally:
        applied.apply_sites()
    assert verify_sites(SITES) == [], "the server was not restored"


def test_verify_passes_on_a_clean_apply(applied: Stack) -> None:
    assert verify_sites(SITES) == []
    result = CliRunner().invoke(app, ["verify", "--sites", str(SITES)])
    assert result.exit_code == 0, result.output
    assert "no drift" in result.output


def test_a_deployment_version_changed_by_hand_is_named(restore: Stack) -> None:
    expected = deployment("alpha").version
    update("alpha", version="0.0.0+by-hand")
    findings = verify_sites(SITES)
    assert Drift("alpha", "version", expected, "0.0.0+by-hand") in findings
    assert {d.site for d in findings} == {"alpha"}
    assert any(d.what == "code" for d in findings), "the code on disk no longer matches it"
    result = CliRunner().invoke(app, ["verify", "--sites", str(SITES)])
    assert result.exit_code == 1
    assert "alpha" in result.output
    assert "0.0.0+by-hand" in result.output


def test_sites_apply_records_which_files_make_the_version_it_deploys(applied: Stack) -> None:
    from axtrace.reports.verify import recorded_manifest
    from axtrace.version import manifest

    assert recorded_manifest(deployment("alpha").version) == manifest(ROOT)


def test_explain_names_the_behaviour_files_that_differ_from_the_deployed_version(
    restore: Stack,
) -> None:
    """A site still deployed with an older version whose manifest was recorded: which files
    changed, came or went since, by name."""
    from axtrace.reports.verify import record_manifest
    from axtrace.version import manifest

    old = manifest(ROOT) | {"axtrace/ownership.py": "0" * 16, "axtrace/gone.py": "1" * 16}
    del old["axtrace/text.py"]
    record_manifest("0.0.0+older", old)
    update("alpha", version="0.0.0+older")
    findings = verify_sites(SITES, explain=True)
    assert Drift("alpha", "version files", "files of 0.0.0+older (deployed)",
                 "removed: axtrace/gone.py; changed: axtrace/ownership.py; "
                 "added: axtrace/text.py") in findings
    result = CliRunner().invoke(app, ["verify", "--sites", str(SITES), "--explain"])
    assert result.exit_code == 1
    assert "axtrace/ownership.py" in result.output


def test_explain_says_when_no_manifest_was_recorded_for_a_version(restore: Stack) -> None:
    update("alpha", version="0.0.0+by-hand")
    explained = [d for d in verify_sites(SITES, explain=True) if d.what == "version files"]
    assert [d.found for d in explained] == [
        "not recorded (applied before manifests, or elsewhere)"]


def test_a_deployment_entrypoint_changed_by_hand_is_named(restore: Stack) -> None:
    update("delta", entrypoint="flows/other.py:respond_differently")
    assert verify_sites(SITES) == [Drift("delta", "entrypoint", "flows/respond.py:respond_to_alert",
                                         "flows/other.py:respond_differently")]


def test_a_deleted_policy_block_is_named(restore: Stack) -> None:
    with prefect() as client:
        block = client.read_block_document_by_name("gamma", "axtrace-ownership-policy")
        client.delete_block_document(block.id)
    [finding] = verify_sites(SITES)
    assert (finding.site, finding.what, finding.found) == ("gamma", "policy", "missing")


def test_a_policy_edited_on_the_server_is_named(restore: Stack) -> None:
    from axtrace_blocks import OwnershipPolicy

    policy: Any = OwnershipPolicy.load("beta")
    policy.escalation_chain[0].responders = ["mallory"]
    policy.save("beta", overwrite=True)
    [finding] = verify_sites(SITES)
    assert (finding.site, finding.what) == ("beta", "policy")
    assert "edited on the server" in finding.found
    [entry] = detected_edits(after=policyhistory.APPLY_GRACE)
    assert (entry.site, entry.origin) == ("beta", "prefect-ui")
    assert {"field": "escalation_chain.0.responders", "kind": "changed", "before": "dave",
            "after": "mallory"} in entry.changes, entry.changes


def detected_edits(after: Any) -> list[Any]:
    """What the auditor's pass puts on record from the server's policy blocks, ``after`` past
    their last update."""
    from sqlmodel import Session

    from axtrace.ledger.db import engine_for
    from axtrace.settings import get_settings

    with prefect() as client:
        documents = client.read_block_documents_by_type("axtrace-ownership-policy")
    now = max(d.updated for d in documents) + after
    with Session(engine_for(get_settings().ledger_url), expire_on_commit=False) as session:
        found = policyhistory.detect_edits(documents, session, now)
        session.commit()
    return found


def test_sites_apply_puts_each_policy_on_record_with_who_and_from_which_file(
    applied: Stack,
) -> None:
    from sqlmodel import Session

    from axtrace.ledger.db import engine_for
    from axtrace.settings import get_settings

    with Session(engine_for(get_settings().ledger_url)) as session:
        last = policyhistory.last_for(session, "alpha")
        assert last is not None
        assert (last.origin, last.where) == ("sites apply", str(SITES.resolve()))
        assert last.actor == policyhistory.os_user()
        assert "_block_document_id" not in last.policy
    assert detected_edits(after=policyhistory.APPLY_GRACE) == [], "nothing edited elsewhere"


def test_a_deployment_for_a_site_outside_the_file_is_named(restore: Stack) -> None:
    from axtrace.sites import deployment_for, load_sites

    spec = load_sites(SITES)[0]
    rogue = deployment_for(type(spec)(site="zeta", description="", policy=spec.policy), ROOT)
    deployment_id = rogue.apply()
    try:
        findings = verify_sites(SITES)
    finally:
        with prefect() as client:
            client.delete_deployment(deployment_id)
    assert findings == [Drift("zeta", "unlisted deployment",
                              "no deployment outside the sites file", "respond-to-alert/zeta")]


def test_the_site_report_flow_publishes_one_artifact_per_site_and_one_across_sites(
    applied: Stack,
) -> None:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.flows import load_flow_from_entrypoint

    site_report: Any = load_flow_from_entrypoint(
        str(ROOT / "flows" / "site_report.py:site_report"))
    result = site_report()
    keys = {"cross-site-figures", "cross-site-report",
            *(f"site-report-{s}" for s in ("alpha", "beta", "gamma", "delta"))}
    assert keys <= set(result["artifacts"])
    with prefect() as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=sorted(keys))))
    by_key = {a.key: a for a in found}
    assert set(by_key) == keys
    assert by_key["cross-site-figures"].type == "table"
    assert "# AxTrace at alpha" in str(by_key["site-report-alpha"].data)
    assert "Consistency score" in str(by_key["cross-site-report"].data)


def test_the_site_report_deployment_applies_with_a_daily_schedule(applied: Stack) -> None:
    from axtrace.reports.deploy import site_report_deployment

    deployment_id = site_report_deployment(ROOT).apply()
    try:
        with prefect() as client:
            found = client.read_deployment(deployment_id)
            schedules = [s.schedule for s in found.schedules]
    finally:
        with prefect() as client:
            client.delete_deployment(deployment_id)
    assert found.entrypoint == "flows/site_report.py:site_report"
    assert [(s.cron, s.timezone) for s in schedules] == [("0 6 * * *", "UTC")]
