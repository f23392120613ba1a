"""Sites: the list in ``deployments/sites.yaml`` becomes one policy block and one deployment of
``respond-to-alert`` per site. The slug names a site everywhere: block document ``<site>``,
deployment ``respond-to-alert/<site>``, tag ``site:<site>``.

Reading and checking the file is pure (:mod:`axtrace.sitefile`); this module is its shell:
it reads the file from disk, asks the Prefect server what the pure check cannot know, and
applies the sites.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from axtrace import ownership
from axtrace.errors import InvalidInput, Unavailable
from axtrace.sitefile import Checked, Problem, SiteSpec, fmt_duration, read
from axtrace.version import manifest, workflow_version
from axtrace.workflow import FLOW_ENTRYPOINT, FLOW_NAME

DEFAULT_SITES = Path("deployments/sites.yaml")


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


def read_sites(path: Path) -> Checked:
    """Read and check a sites file: its sites, and every error and warning in it."""
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise InvalidInput(f"sites file not found: {path}", field="sites") from exc
    return read(text, str(path))


def load_sites(path: Path) -> list[SiteSpec]:
    """The sites of a sites file; refused, naming every error with its line, when it has any
    (the same errors ``axtrace sites check`` prints)."""
    checked = read_sites(path)
    if checked.errors:
        first = checked.errors[0]
        where = ".".join(p for p in ("sites", first.site or "", first.field) if p)
        raise InvalidInput("\n".join(str(p) for p in checked.errors), field=where)
    return checked.specs


def notification_warnings(checked: Checked) -> list[Problem] | None:
    """A warning for each ``notification_block`` the configured Prefect server does not have;
    ``None`` when no server is configured or reachable (the check stays offline then)."""
    wanted = {s.site: s.policy.notification_block for s in checked.specs
              if s.policy.notification_block and "/" in s.policy.notification_block}
    if not wanted:
        return []
    url = reachable_prefect()
    if url is None:
        return None
    import httpx
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    found = []
    try:
        with get_client(sync_client=True) as client:
            for site, channel in wanted.items():
                slug, name = str(channel).split("/", 1)
                try:
                    client.read_block_document_by_name(name=name, block_type_slug=slug)
                except ObjectNotFound:
                    found.append(checked.at("warning", site, "policy.notification_block",
                                            f"block '{channel}' does not exist on the Prefect "
                                            f"server at {url}"))
    except (PrefectHTTPStatusError, httpx.HTTPError):
        return None  # it answered /health but not this (credentials?): not looked up
    return found


def reachable_prefect() -> str | None:
    """The configured Prefect API URL when it answers; ``None`` when unset (Prefect would
    start a temporary server of its own) or unreachable."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return None
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=3)
    except httpx.HTTPError:
        return None
    return str(url)


def describe(spec: SiteSpec) -> str:
    """The deployment description an operator reads in the Prefect UI."""
    policy = spec.policy
    chain = "\n".join(
        f"{i}. {lvl.name or 'Level ' + str(i)}: {', '.join(lvl.responders)} "
        f"(acknowledge within {fmt_duration(lvl.acknowledge_within.total_seconds())})"
        for i, lvl in enumerate(policy.escalation_chain, start=1)
    )
    return (
        f"Standard AxTrace response to AI alerts at **{spec.site}**. {spec.description}\n\n"
        f"Owner: **{policy.owning_team}**. Resolve within "
        f"{fmt_duration(policy.resolve_within.total_seconds())}.\n\nEscalation chain:\n{chain}\n\n"
        "Run this deployment with a title and severity to raise a manual alert."
    )


def deployment_for(spec: SiteSpec, root: Path, work_pool: str | None = None) -> Any:
    """The site's deployment of the one flow: same entrypoint and version, own parameter;
    with ``AXTRACE_SITE_CONCURRENCY`` a Prefect concurrency limit (excess runs wait)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from axtrace.deploy import runner_deployment
    from axtrace.settings import get_settings

    limit = get_settings().site_concurrency
    return runner_deployment(
        root, FLOW_ENTRYPOINT, name=spec.site, work_pool=work_pool,
        parameters={"site": spec.site}, tags=["axtrace", f"site:{spec.site}"],
        version=workflow_version(root), description=describe(spec),
        concurrency_limit=ConcurrencyLimitConfig(
            limit=limit, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE,
        ) if limit else None,
    )


def sites_root(path: Path) -> Path:
    """The project folder of a sites file: above it, else the current folder's."""
    try:
        return project_root(path.parent)
    except InvalidInput:
        return project_root()  # a sites file kept elsewhere, applied from the project folder


def apply_sites(
    path: Path, *, work_pool: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Any]:
    """Save each site's policy as block ``<site>`` and create ``respond-to-alert/<site>``."""
    specs = load_sites(path)
    root = sites_root(path)
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
    from axtrace.reports.verify import record_manifest

    record_manifest(workflow_version(root), manifest(root))
    record_policies(specs, path)
    return deployments


def record_policies(specs: list[SiteSpec], path: Path) -> None:
    """Put each site's policy change (if any) on record in the ledger, made by this OS user
    from ``path`` (:mod:`axtrace.policyhistory`)."""
    from sqlalchemy.exc import SQLAlchemyError

    from axtrace import policyhistory
    from axtrace.ledger.db import upgrade
    from axtrace.ledger.session import in_transaction
    from axtrace.settings import get_settings

    def work(session: Any) -> None:
        for spec in specs:
            policyhistory.record(session, site=spec.site, origin="sites apply",
                                 policy=ownership.snapshot(spec.policy),
                                 actor=policyhistory.os_user(), where=str(path.resolve()))

    try:
        upgrade(get_settings().ledger_url)
        in_transaction(work)
    except SQLAlchemyError as exc:
        raise Unavailable(f"the sites were applied, but the ledger did not take the record of "
                          f"their policy changes: {exc}", field="ledger") from exc


def policy_version(spec: SiteSpec) -> str:
    return ownership.version(ownership.snapshot(spec.policy))


def full_name(site: str) -> str:
    return f"{FLOW_NAME}/{site}"
