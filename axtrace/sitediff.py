"""What ``axtrace sites apply`` would change on the Prefect server, per site and field.

    the sites file, the code on disk ─▶ desired ─┐
                                                 ├─ diff() (pure) ─▶ [Change, ...]
    policy blocks, deployments (Prefect) ─▶ current ─┘   read by current_sites()

A site is compared as flat fields: ``policy.<path>`` (the policy block's content, durations as
the file writes them), ``deployment.version`` (the workflow version) and
``deployment.description`` (shown only when no policy field changed: it is written from
the policy). A site on the server but not in the file is *removed*: ``sites
apply`` leaves its deployment and block in place, so the diff shows it until they are deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from axtrace.sitefile import SiteSpec, fmt_duration
from axtrace_blocks import OwnershipPolicy

Kind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class SiteState:
    """One site as one side has it: flat policy fields (``None``: no policy block) and its
    deployment's version and description (``None``: no deployment)."""

    policy: Mapping[str, str] | None = None
    version: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Change:
    """One difference: a whole site (``field`` empty) or one field of it."""

    site: str
    kind: Kind
    field: str = ""
    before: str | None = None
    after: str | None = None

    def __str__(self) -> str:
        mark = {"added": "+", "removed": "-", "changed": "~"}[self.kind]
        if not self.field:
            return f"{mark} site '{self.site}': {self.kind}" + (
                " (on the server, not in the file; sites apply leaves it)"
                if self.kind == "removed" else "")
        if self.field == "deployment.description":
            return f"{mark} site '{self.site}': {self.field}: {self.kind}"
        shown = {"added": f"{self.after}", "removed": f"{self.before}",
                 "changed": f"{self.before} -> {self.after}"}[self.kind]
        return f"{mark} site '{self.site}': {self.field}: {shown}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff(desired: Mapping[str, SiteState], current: Mapping[str, SiteState]) -> list[Change]:
    """Every change from ``current`` to ``desired``: sites in the file's order, then removed
    sites by name; fields in the order the policy declares them."""
    changes = [Change(site, "added") for site in desired if site not in current]
    for site in desired:
        if site in current:
            changes += _site_changes(site, desired[site], current[site])
    changes += [Change(site, "removed") for site in sorted(current) if site not in desired]
    return changes


def _site_changes(site: str, want: SiteState, have: SiteState) -> list[Change]:
    changes = field_changes(site, _fields(have), _fields(want))
    if any(c.field.startswith("policy.") for c in changes):
        # The description is written from the policy: it changes with it; shown on its own
        # only when something else changed it (the site's description, the wording).
        changes = [c for c in changes if c.field != "deployment.description"]
    return changes


def field_changes(site: str, before: Mapping[str, str], after: Mapping[str, str]) -> list[Change]:
    """Each flat field added, removed or changed from ``before`` to ``after`` (in ``after``'s
    order, then the removed ones)."""
    changes = []
    for name in [*after, *(n for n in before if n not in after)]:
        old, new = before.get(name), after.get(name)
        if old != new:
            kind: Kind = "added" if old is None else "removed" if new is None else "changed"
            changes.append(Change(site, kind, name, old, new))
    return changes


def _fields(state: SiteState) -> dict[str, str]:
    fields = {f"policy.{k}": v for k, v in (state.policy or {}).items()}
    if state.version is not None:
        fields["deployment.version"] = state.version
    if state.description is not None:
        fields["deployment.description"] = state.description
    return fields


def policy_fields(policy: OwnershipPolicy | Mapping[str, Any]) -> dict[str, str]:
    """A policy as flat fields, e.g. ``escalation_chain.0.acknowledge_within: 20s`` (empty
    values left out, so setting one shows as added)."""
    data = policy.model_dump() if isinstance(policy, OwnershipPolicy) else dict(policy)
    for key in ("site", "block_type_slug"):
        data.pop(key, None)
    return dict(_flat(data, ""))


def _flat(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _flat(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        if value:
            yield prefix, ", ".join(value)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _flat(inner, f"{prefix}.{i}")
    elif isinstance(value, timedelta):
        yield prefix, fmt_duration(value)
    elif value is not None and value != "":
        yield prefix, str(value)


# --------------------------------------------------------------------------- the shell


def desired_sites(specs: list[SiteSpec], root: Path) -> dict[str, SiteState]:
    """What ``sites apply`` would leave on the server for each site of the file."""
    from axtrace.sites import describe
    from axtrace.version import workflow_version

    version = workflow_version(root)
    return {s.site: SiteState(policy_fields(s.policy), version, describe(s)) for s in specs}


def current_sites(client: Any, listed: list[str]) -> dict[str, SiteState]:
    """What the server has for the listed sites and for every site with a deployment of
    respond-to-alert."""
    from axtrace.reports.verify import flow_deployments

    deployments = flow_deployments(client)
    found = {}
    for site in [*listed, *sorted(set(deployments) - set(listed))]:
        policy, deployment = _stored_policy(client, site), deployments.get(site)
        if policy is not None or deployment is not None:
            found[site] = SiteState(policy, getattr(deployment, "version", None),
                                    getattr(deployment, "description", None))
    return found


def _stored_policy(client: Any, site: str) -> dict[str, str] | None:
    from prefect.exceptions import ObjectNotFound
    from pydantic import ValidationError

    from axtrace.policyhistory import POLICY_BLOCK_TYPE

    try:
        document = client.read_block_document_by_name(name=site,
                                                      block_type_slug=POLICY_BLOCK_TYPE)
    except ObjectNotFound:
        return None
    try:
        return policy_fields(OwnershipPolicy.model_validate(document.data))
    except ValidationError:
        return policy_fields(document.data)  # shown as stored: it differs from the file anyway


def sites_diff(path: Path) -> list[Change]:
    """The changes ``sites apply`` of ``path`` would make on the configured Prefect server."""
    from prefect import get_client

    from axtrace.sites import load_sites, sites_root

    specs = load_sites(path)
    desired = desired_sites(specs, sites_root(path))
    with get_client(sync_client=True) as client:
        current = current_sites(client, [s.site for s in specs])
    return diff(desired, current)
