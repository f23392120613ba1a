"""Proof of standardisation: what differs between the sites file, the Prefect server, the code
on disk and the ledger. Every finding is a :class:`Drift` naming the site, what drifted, what
was expected and what was found; no findings means every site runs the same workflow.

Checks against Prefect (:func:`verify_sites`), for every site in the sites file:

- ``policy``: a block document named after the site, of type ``axtrace-ownership-policy``,
  exists, validates as an ``OwnershipPolicy``, and has the content of the sites file (same
  policy version);
- ``deployment``: ``respond-to-alert/<site>`` exists, with ``entrypoint`` =
  ``flows/respond.py:respond_to_alert``, ``version`` = ``workflow_version(root)`` of the code
  on disk, and parameter ``site`` = the site;
- ``code``: the flow code at the deployment's path hashes to the version it records;

and ``unlisted deployment``: no deployment of ``respond-to-alert`` exists for a site outside
the file.

Checks against the ledger (:func:`verify_ledger`), for every alert: its hash chain holds
(an edited, removed or inserted step breaks it); its trace holds every step its state
implies (a truncated tail leaves the chain whole, but an alert ``closed`` without a ``closed``
step is found); its keyed seals hold (:mod:`axtrace.ledger.seal`: a step rewritten with the
chain recomputed, or a decisive column changed, by someone without the key); and no alert was
deleted (a delivery, step or outbox row naming a missing alert, or on SQLite a gap in the ids).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from axtrace.ledger import repo, seal
from axtrace.ledger.models import Delivery, OutboxItem, Outcome, Status, Step, TraceEvent
from axtrace.policyhistory import POLICY_BLOCK_TYPE
from axtrace.reports.query import ALERT
from axtrace.settings import get_settings


@dataclass(frozen=True)
class Drift:
    """One difference from the standard."""

    site: str
    what: str
    expected: str
    found: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# --------------------------------------------------------------------------- Prefect


def verify_sites(
    sites_path: Path, *, root: Path | None = None, explain: bool = False,
) -> list[Drift]:
    """Every drift between the sites file, the Prefect server and the code under ``root``;
    with ``explain``, which behaviour files differ for each site deployed with another
    version."""
    from prefect import get_client

    from axtrace.sites import load_sites, project_root
    from axtrace.version import workflow_version

    specs = load_sites(sites_path)
    root = root or project_root(sites_path.resolve().parent)
    expected_version = workflow_version(root)
    with get_client(sync_client=True) as client:
        deployments = flow_deployments(client)
        findings = [d for spec in specs for d in check_policy(client, spec)]
    findings += [d for spec in specs
                 for d in check_deployment(spec.site, deployments.get(spec.site),
                                           expected_version)]
    listed = {spec.site for spec in specs}
    findings += [unlisted(name) for name in sorted(deployments) if name not in listed]
    if explain:
        findings += explain_versions(findings, root)
    return findings


def explain_versions(findings: list[Drift], root: Path) -> list[Drift]:
    """For each site deployed with another version, the files that differ from the manifest
    ``sites apply`` recorded for that version (or that none was recorded)."""
    from axtrace.version import manifest, manifest_changes

    now = manifest(root)
    explained = []
    for drift in [d for d in findings if d.what == "version"]:
        recorded = recorded_manifest(drift.found)
        if recorded is None:
            explained.append(Drift(drift.site, "version files", f"manifest of {drift.found}",
                                   "not recorded (applied before manifests, or elsewhere)"))
            continue
        changes = manifest_changes(recorded, now)
        explained.append(Drift(drift.site, "version files",
                               f"files of {drift.found} (deployed)",
                               "; ".join(changes) or "the same files (another package version)"))
    return explained


def record_manifest(version: str, files: dict[str, str]) -> None:
    """Record with Prefect which behaviour files (:func:`axtrace.version.manifest`) make
    ``version``, as a table artifact, unless it is recorded already (``sites apply``)."""
    from prefect import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    from axtrace.version import manifest_key

    if recorded_manifest(version) is not None:
        return
    rows = [{"file": name, "sha256": sha} for name, sha in files.items()]
    with get_client(sync_client=True) as client:
        client.create_artifact(ArtifactCreate(
            key=manifest_key(version), type="table", data=rows,
            description=f"Behaviour files of workflow version {version}, recorded by "
                        "`axtrace sites apply`; `axtrace verify --explain` compares with them."))


def recorded_manifest(version: str) -> dict[str, str] | None:
    """The manifest ``sites apply`` recorded with Prefect for ``version``, if any."""
    import json

    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactCollectionFilter,
        ArtifactCollectionFilterKey,
    )

    from axtrace.version import manifest_key

    wanted = ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[manifest_key(version)]))
    with get_client(sync_client=True) as client:
        found = client.read_latest_artifacts(artifact_filter=wanted, limit=1)
    if not found:
        return None
    data: Any = found[0].data
    rows: list[dict[str, str]] = json.loads(data) if isinstance(data, str) else data
    return {row["file"]: row["sha256"] for row in rows}


def flow_deployments(client: Any) -> dict[str, Any]:
    """The deployments of respond-to-alert on the server, by deployment name."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    from axtrace.workflow import FLOW_NAME

    found = client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])))
    return {d.name: d for d in found}


def deployed_sites() -> list[str]:
    """Names of the sites that have a deployment of respond-to-alert (for the flow)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return sorted(flow_deployments(client))


def check_policy(client: Any, spec: Any) -> list[Drift]:
    """The site's policy block exists, validates, and matches the sites file."""
    from prefect.exceptions import ObjectNotFound
    from pydantic import ValidationError

    from axtrace import ownership
    from axtrace.sites import policy_version
    from axtrace_blocks import OwnershipPolicy

    wanted = f"block '{spec.site}' of {POLICY_BLOCK_TYPE}"
    try:
        document = client.read_block_document_by_name(
            name=spec.site, block_type_slug=POLICY_BLOCK_TYPE)
    except ObjectNotFound:
        return [Drift(spec.site, "policy", wanted, "missing")]
    try:
        policy = OwnershipPolicy.model_validate(document.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return [Drift(spec.site, "policy", "a valid OwnershipPolicy",
                      f"invalid: {where}: {first['msg']}")]
    found = ownership.version(ownership.snapshot(policy))
    expected = policy_version(spec)
    if found != expected:
        return [Drift(spec.site, "policy", f"version {expected} (sites file)",
                      f"version {found} (edited on the server?)")]
    return []


def check_deployment(site: str, deployment: Any, expected_version: str) -> list[Drift]:
    """The site's deployment exists and runs the standard entrypoint, version and code."""
    from axtrace.workflow import FLOW_ENTRYPOINT, FLOW_NAME

    if deployment is None:
        return [Drift(site, "deployment", f"{FLOW_NAME}/{site}", "missing")]
    found = []
    if deployment.entrypoint != FLOW_ENTRYPOINT:
        found.append(Drift(site, "entrypoint", FLOW_ENTRYPOINT, str(deployment.entrypoint)))
    if deployment.version != expected_version:
        found.append(Drift(site, "version", expected_version, str(deployment.version)))
    if (deployment.parameters or {}).get("site") != site:
        found.append(Drift(site, "parameters", f"site={site}",
                           f"site={(deployment.parameters or {}).get('site')}"))
    found += check_code(site, deployment)
    return found


def check_code(site: str, deployment: Any) -> list[Drift]:
    """The flow code the deployment points at hashes to the version it records."""
    from axtrace.version import workflow_version
    from axtrace.workflow import FLOW_ENTRYPOINT

    if not deployment.path or not Path(deployment.path).is_dir():
        return []  # code pulled from elsewhere at run time: nothing on this disk to hash
    flow_file = Path(deployment.path) / FLOW_ENTRYPOINT.split(":")[0]
    if not flow_file.is_file():
        return [Drift(site, "code", str(flow_file), "missing")]
    on_disk = workflow_version(Path(deployment.path))
    if on_disk != deployment.version:
        return [Drift(site, "code", f"code at {deployment.path} = version "
                      f"{deployment.version}", on_disk)]
    return []


def unlisted(name: str) -> Drift:
    from axtrace.workflow import FLOW_NAME

    return Drift(name, "unlisted deployment", "no deployment outside the sites file",
                 f"{FLOW_NAME}/{name}")


# --------------------------------------------------------------------------- ledger


class AlertState(Protocol):
    """What the ledger checks read of an alert: the :data:`STATE` columns."""

    id: int | None
    site: str
    status: str
    level: int
    notified_level: int
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    outcome: str | None
    overdue_at: datetime | None
    suppressed_until: datetime | None
    trace_len: int
    trace_head: str
    trace_seal: str | None
    state_seal: str | None


STATE = tuple(dict.fromkeys((
    "id", "site", "status", "level", "notified_level", "acknowledged_at", "resolved_at",
    "overdue_at", "suppressed_until", "trace_len", "trace_head", "trace_seal", "state_seal",
    *seal.SEALED)))


def implied_steps(alert: AlertState, assigned_level: int = 1) -> set[str]:
    """Steps the alert's state says its trace must hold. A level beyond the one it was
    assigned to (1, or a later one when the levels before had nobody on call) implies an
    ``escalated`` step (for either deadline); ``overdue_at`` an ``overdue`` step;
    ``suppressed_until`` a ``suppressed`` step. Resolved without an acknowledgement implies
    ``ignored``, unless its source resolved it (e.g. a silent detector's next heartbeat: it
    may do so while the alert is open). A ``reminded`` or ``released`` step leaves no mark on
    the alert's state, so none is implied."""
    steps = {Step.RECEIVED.value}
    if alert.level >= 1:
        steps.add(Step.ASSIGNED.value)
    if alert.notified_level >= 1:
        steps.add(Step.NOTIFIED.value)
    if alert.level > max(assigned_level, 1):
        steps.add(Step.ESCALATED.value)
    if alert.acknowledged_at is not None:
        steps.add(Step.ACKNOWLEDGED.value)
    elif alert.status == Status.IGNORED or (
            alert.resolved_at is not None and alert.outcome != Outcome.RESOLVED_AT_SOURCE):
        steps.add(Step.IGNORED.value)  # a source may resolve an alert no one acknowledged
    if alert.overdue_at is not None:
        steps.add(Step.OVERDUE.value)
    if alert.suppressed_until is not None:
        steps.add(Step.SUPPRESSED.value)
    if alert.resolved_at is not None:
        steps.add(Step.RESOLVED.value)
    if alert.status == Status.CLOSED:
        steps.add(Step.CLOSED.value)
    return steps


def check_trace(alert: AlertState, events: Sequence[TraceEvent]) -> list[Drift]:
    """The alert's hash chain holds and its trace holds every step its state implies."""
    found = []
    broken = repo.verify_chain(events)
    if broken is not None:
        found.append(Drift(alert.site, f"alert {alert.id} trace", "hash chain intact",
                           f"edited, removed or inserted step at seq {broken}"))
    if len(events) != alert.trace_len or (events and events[-1].hash != alert.trace_head):
        found.append(Drift(alert.site, f"alert {alert.id} trace",
                           f"{alert.trace_len} steps ending in {alert.trace_head[:12]}",
                           f"{len(events)} steps (truncated or cut off)"))
    missing = implied_steps(alert, _assigned_level(events)) - {e.step for e in events}
    if missing:
        found.append(Drift(alert.site, f"alert {alert.id} trace",
                           f"steps for status {alert.status}",
                           f"missing {', '.join(sorted(missing))} (truncated?)"))
    return found


def _assigned_level(events: Sequence[TraceEvent]) -> int:
    """The level the ``assigned`` step gave the alert (1 unless levels were skipped)."""
    for event in events:
        if event.step == Step.ASSIGNED:
            level = event.detail.get("level", 1)
            return level if isinstance(level, int) else 1
    return 1


def traces(session: Session, batch: int = 2000) -> Iterator[tuple[int, list[TraceEvent]]]:
    """Every alert's trace, streamed in alert order."""
    query = select(TraceEvent).order_by(col(TraceEvent.alert_id), col(TraceEvent.seq))
    rows = session.exec(query.execution_options(yield_per=batch))
    for alert_id, events in groupby(rows, key=lambda e: e.alert_id):
        yield alert_id, list(events)


def trace_says(events: Sequence[TraceEvent]) -> dict[str, Any]:
    """The decisive columns as the alert's own steps tell them (those the steps decide)."""
    says: dict[str, Any] = {}
    for event in events:
        step, detail = event.step, event.detail
        if step == Step.RECEIVED:
            says |= {"status": Status.OPEN.value, "level": 0}
        elif step == Step.ASSIGNED:
            says["level"] = detail.get("level", 1)
        elif step == Step.ESCALATED:
            says["level"] = detail.get("to_level")
        elif step == Step.ACKNOWLEDGED:
            says |= {"status": Status.ACKNOWLEDGED.value, "acknowledged_by": event.actor}
        elif step == Step.RESOLVED:
            says |= {"status": Status.RESOLVED.value, "resolved_by": event.actor,
                     "outcome": detail.get("outcome")}
        elif step in (Step.IGNORED, Step.CLOSED):
            says["status"] = step
    return says


def check_seals(alert: AlertState, events: Sequence[TraceEvent], key: bytes) -> list[Drift]:
    """The alert's keyed seals hold: neither its trace nor its decisive columns were changed by
    anyone without the ledger key (e.g. a step rewritten and the chain recomputed)."""
    where = f"alert {alert.id} seal"
    if alert.trace_seal is None or alert.state_seal is None:
        return [Drift(alert.site, where, "sealed with the ledger key", "no seal")]
    found = []
    columns = {name: getattr(alert, name) for name in (*seal.SEALED, "trace_len", "trace_head")}
    expected = seal.seals(key, alert.id, columns)
    if not hmac.compare_digest(expected["trace_seal"], alert.trace_seal):
        found.append(Drift(alert.site, where, "trace as sealed",
                           "trace rewritten without the ledger key (its length or last hash "
                           "is not what was sealed)"))
    if not hmac.compare_digest(expected["state_seal"], alert.state_seal):
        found.append(Drift(alert.site, where, "columns as sealed",
                           _changed_columns(alert, trace_says(events))))
    return found


def _changed_columns(alert: AlertState, says: dict[str, Any]) -> str:
    differ = [f"{name} is {getattr(alert, name)!r} but its trace says {value!r}"
              for name, value in says.items() if getattr(alert, name) != value]
    if differ:
        return "changed without the ledger key: " + "; ".join(differ)
    return ("changed without the ledger key: one of " + ", ".join(seal.SEALED)
            + " (the trace does not tell which)")


def missing_alerts(session: Session, present: set[int]) -> list[Drift]:
    """Alerts deleted from the ledger: named by a delivery's answer, by a step or outbox row
    left behind, or (SQLite, which never skips an id) by a gap in the ids."""
    named: dict[int, str] = {}
    for delivery_id, result in session.exec(
            select(Delivery.id, Delivery.result).where(Delivery.status == "accepted")):
        for item in (result or {}).get("alerts", []):
            if isinstance(item.get("id"), int) and item["id"] not in present:
                named.setdefault(item["id"], f"delivery {delivery_id} accepted it")
    for table, why in ((TraceEvent, "its steps are left"), (OutboxItem, "its outbox row is left")):
        for alert_id in session.exec(select(table.alert_id).distinct()):
            if alert_id not in present:
                named.setdefault(alert_id, why)
    if present and session.get_bind().dialect.name == "sqlite":
        for alert_id in sorted(set(range(1, max(present) + 1)) - present):
            named.setdefault(alert_id, "its id is missing between others")
    return [Drift("?", f"alert {alert_id}", "in the ledger", f"deleted ({why})")
            for alert_id, why in sorted(named.items())]


def verify_ledger(
    session: Session, *, progress: Callable[[int], None] | None = None,
) -> list[Drift]:
    """Every alert whose trace or sealed columns were edited, truncated or deleted."""
    state = sa_select(*(ALERT.c[name] for name in STATE))
    alerts: dict[int, Any] = {
        row.id: row for row in session.connection().execute(state)}
    key = seal.ledger_key(create=False)
    findings: list[Drift] = []
    if key is None:
        findings.append(Drift("-", "ledger key", "AXTRACE_LEDGER_KEY or "
                              f"{seal.key_path(get_settings())}", "neither: seals not checked"))
    seen: set[int] = set()
    for alert_id, events in traces(session):
        if alert_id not in alerts:
            continue  # named by missing_alerts
        seen.add(alert_id)
        findings += _check_alert(alerts[alert_id], events, key)
        if progress:
            progress(1)
    for alert_id in sorted(set(alerts) - seen):
        findings += _check_alert(alerts[alert_id], [], key)
    if key is not None:
        findings += check_policy_history(session, key)
    return findings + missing_alerts(session, set(alerts))


def check_policy_history(session: Session, key: bytes) -> list[Drift]:
    """The chain of policy changes holds (:mod:`axtrace.policyhistory`)."""
    from axtrace import policyhistory

    entries = policyhistory.history(session)
    broken = policyhistory.broken_at(entries, key)
    if broken is None:
        return []
    site = next((e.site for e in entries if e.seq == broken), "?")
    return [Drift(site, "policy history", "chain intact",
                  f"edited, removed or inserted change at seq {broken}")]


def _check_alert(alert: Any, events: list[TraceEvent], key: bytes | None) -> list[Drift]:
    found = check_trace(alert, events)
    return found + check_seals(alert, events, key) if key is not None else found
