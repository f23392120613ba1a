"""Sites: the list in ``deployments/sites.yaml`` becomes one policy block and one deployment of
``respond-to-alert`` per site. The slug names a site everywhere: block document ``<site>``,
deployment ``respond-to-alert/<site>``, tag ``site:<site>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from axtrace import ownership
from axtrace.errors import InvalidInput
from axtrace.workflow import FLOW_ENTRYPOINT, FLOW_NAME, workflow_version
from axtrace_blocks import OwnershipPolicy

DEFAULT_SITES = Path("deployments/sites.yaml")


@dataclass(frozen=True)
class SiteSpec:
    site: str
    description: str
    policy: OwnershipPolicy


def project_root(start: Path | None = None) -> Path:
    """The folder holding ``flows/respond.py`` (searched upwards from ``start`` or cwd)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "flows" / "respond.py").is_file():
            return folder
    raise InvalidInput(
        f"flows/respond.py not found in {here} or above: run AxTrace from its project folder",
        field="project",
    )


def load_sites(path: Path) -> list[SiteSpec]:
    """Read and validate a sites file; errors name the site and the field."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidInput(f"sites file not found: {path}", field="sites") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}", field="sites") from exc
    sites = (data or {}).get("sites") if isinstance(data, dict) else None
    if not isinstance(sites, dict) or not sites:
        raise InvalidInput(
            f"{path}: needs a 'sites:' mapping of site slug to policy", field="sites"
        )
    return [_spec(path, slug, body) for slug, body in sites.items()]


def _spec(path: Path, slug: Any, body: Any) -> SiteSpec:
    if not isinstance(body, dict) or not isinstance(body.get("policy"), dict):
        raise InvalidInput(f"{path}: site '{slug}': needs a 'policy:' mapping", field="policy")
    try:
        policy = OwnershipPolicy.model_validate({**body["policy"], "site": slug})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"{path}: site '{slug}': {where}: {first['msg']}", field=f"sites.{slug}.{where}"
        ) from exc
    return SiteSpec(site=str(slug), description=str(body.get("description", "")), policy=policy)


def describe(spec: SiteSpec) -> str:
    """The deployment description an operator reads in the Prefect UI."""
    policy = spec.policy
    chain = "\n".join(
        f"{i}. {lvl.name or 'Level ' + str(i)}: {', '.join(lvl.responders)} "
        f"(acknowledge within {_fmt(lvl.acknowledge_within.total_seconds())})"
        for i, lvl in enumerate(policy.escalation_chain, start=1)
    )
    return (
        f"Standard AxTrace response to AI alerts at **{spec.site}**. {spec.description}\n\n"
        f"Owner: **{policy.owning_team}**. Resolve within "
        f"{_fmt(policy.resolve_within.total_seconds())}.\n\nEscalation chain:\n{chain}\n\n"
        "Run this deployment with a title and severity to raise a manual alert."
    )


def _fmt(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def deployment_for(spec: SiteSpec, root: Path, work_pool: str | None = None) -> Any:
    """The site's deployment of the one flow: same entrypoint and version, own parameter;
    with ``AXTRACE_SITE_CONCURRENCY`` a Prefect concurrency limit (excess runs wait)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import RunnerDeployment

    from axtrace.settings import get_settings

    limit = get_settings().site_concurrency

    deployment = RunnerDeployment.from_entrypoint(
        entrypoint=str(root / FLOW_ENTRYPOINT.split(":")[0]) + ":" + FLOW_ENTRYPOINT.split(":")[1],
        name=spec.site,
        parameters={"site": spec.site},
        tags=["axtrace", f"site:{spec.site}"],
        version=workflow_version(root),
        description=describe(spec),
        work_pool_name=work_pool,
        concurrency_limit=ConcurrencyLimitConfig(
            limit=limit, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE,
        ) if limit else None,
    )
    deployment.entrypoint = FLOW_ENTRYPOINT
    deployment._path = str(root)
    return deployment


def apply_sites(
    path: Path, *, work_pool: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Any]:
    """Save each site's policy as block ``<site>`` and create ``respond-to-alert/<site>``."""
    specs = load_sites(path)
    try:
        root = project_root(path.parent)
    except InvalidInput:
        root = project_root()  # a sites file kept elsewhere, applied from the project folder
    deployments = []
    for spec in specs:
        spec.policy.save(spec.site, overwrite=True)
        deployment = deployment_for(spec, root, work_pool)
        deployment.apply(work_pool_name=work_pool) if work_pool else deployment.apply()
        deployments.append(deployment)
        if progress:
            progress(spec.site)
    from axtrace.housekeeping import housekeeping_deployments

    for extra in housekeeping_deployments(root, work_pool):
        extra.apply(work_pool_name=work_pool) if work_pool else extra.apply()
        deployments.append(extra)
    return deployments


def policy_version(spec: SiteSpec) -> str:
    return ownership.version(ownership.snapshot(spec.policy))


def full_name(site: str) -> str:
    return f"{FLOW_NAME}/{site}"
