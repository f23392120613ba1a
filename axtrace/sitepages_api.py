"""``GET /v1/sites``, ``GET /v1/sites/{site}`` and ``GET /v1/sites/{site}/policy-history``:
the shell of :mod:`axtrace.sitepages` (reads Prefect and the ledger, then assembles).

A site is one the API knows (a deployment of ``respond-to-alert``, or ``AXTRACE_KNOWN_SITES``).
Reading needs a credential once the API is closed (:mod:`axtrace.access`); a token for some
sites sees those only: another site, like an unknown one, is a 404 naming ``site``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import httpx
from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import func
from sqlmodel import Session, col, select

from axtrace import ownership, policyhistory
from axtrace.access import Caller
from axtrace.api import Reader
from axtrace.errors import NotFound
from axtrace.ledger.models import Alert, PolicyChange, utcnow
from axtrace.ledger.session import ledger_session
from axtrace.reports.model import PolicyChangeSeen
from axtrace.sitepages import (
    OPEN_STATUSES,
    OpenCounts,
    SitePage,
    SiteSummary,
    Source,
    counts_of,
    site_page,
    summary,
)

if TYPE_CHECKING:  # Prefect is imported when a page asks it
    from prefect.client.schemas.objects import BlockDocument

router = APIRouter(tags=["sites"])
PREFECT_SECONDS = 5.0
"""How long a page waits for Prefect before it shows the policy on record instead."""
SiteName = Annotated[str, Path(max_length=63, description="The site's slug.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such site (or one the token does not cover)."}}


async def visible(request: Request, caller: Caller) -> set[str]:
    """The sites the API knows that the caller may see."""
    return {s for s in await request.app.state.sites.known() if caller.sees(s)}


async def the_site(request: Request, caller: Caller, site: str) -> str:
    """``site`` if the caller may see it and it exists (asking Prefect again for a site
    applied a moment ago), else 404 naming ``site`` (nothing says which of the two)."""
    if caller.sees(site) and (site in await request.app.state.sites.known()
                              or site in await request.app.state.sites.refreshed()):
        return site
    raise NotFound(f"no site {site!r}", field="site", location="path")


@router.get("/v1/sites")
async def list_sites(request: Request, caller: Reader) -> list[SiteSummary]:
    """The sites the caller may see, each with the policy version a new alert is pinned to
    and the counts of its alerts not yet resolved."""
    names = sorted(await visible(request, caller))
    on_prefect = await policies_on_prefect()
    counts, recorded = await asyncio.to_thread(ledger_summaries, names)
    policies = {s: _policy_of(s, on_prefect, recorded.get(s)) for s in names}
    return [summary(s, found[0] if found else None, counts.get(s, OpenCounts()))
            for s, found in policies.items()]


@router.get("/v1/sites/{site}", responses=NOT_FOUND)
async def get_site(site: SiteName, request: Request, caller: Reader) -> SitePage:
    """The site's page: the policy a new alert is pinned to, who is on call at each level
    now, the alerts not yet resolved (level, status, deadlines), the last policy change."""
    site = await the_site(request, caller, site)
    on_prefect = await policies_on_prefect(site)
    alerts, last, recorded = await asyncio.to_thread(ledger_page, site)
    pinned = _policy_of(site, on_prefect, recorded)
    calendars = await asyncio.to_thread(read_calendars, pinned[0] if pinned else None)
    return site_page(site, pinned=pinned, last=last, alerts=alerts, now=utcnow(),
                     calendars=calendars)


def read_calendars(pinned: dict[str, Any] | None) -> dict[str, Any]:
    """Each on-call calendar of the policy: the calendar (cached), or why it is unreadable."""
    from axtrace.workflow import calendars

    read = calendars()
    sources = {level.get("oncall_calendar") for level in (pinned or {}).get(
        "escalation_chain", [])}
    return {source: read(source) for source in sources if source}


@router.get("/v1/sites/{site}/policy-history", responses=NOT_FOUND)
async def policy_history(
    site: SiteName, request: Request, caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100,
) -> list[PolicyChangeSeen]:
    """The site's policy changes on record, newest first: when, from where (`sites apply` by
    whom from which file, or `prefect-ui`), both versions and each field changed."""
    site = await the_site(request, caller, site)
    return await asyncio.to_thread(history_of, site, limit)


def _policy_of(site: str, on_prefect: dict[str, dict[str, Any]] | None,
               recorded: dict[str, Any] | None) -> tuple[dict[str, Any], Source] | None:
    """The site's policy and its source: the block on Prefect when Prefect answered (a site
    without a block has none), else the last policy on record."""
    if on_prefect is not None:
        return (on_prefect[site], "prefect") if site in on_prefect else None
    return (recorded, "ledger") if recorded is not None else None


# --------------------------------------------------------------------------- Prefect


async def policies_on_prefect(site: str | None = None) -> dict[str, dict[str, Any]] | None:
    """Each policy block on the Prefect server (pinned form) by name, or only ``site``'s; None
    when no server is configured or it does not answer within :data:`PREFECT_SECONDS`."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return None
    try:
        async with asyncio.timeout(PREFECT_SECONDS):
            documents = await (_policy_document(site) if site else _policy_documents())
    except (httpx.HTTPError, TimeoutError, OSError):
        return None
    return {d.name: pinned for d in documents if d.name and (pinned := _pinned(d)) is not None}


async def _policy_document(site: str) -> list[BlockDocument]:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            return [await client.read_block_document_by_name(
                site, policyhistory.POLICY_BLOCK_TYPE, include_secrets=False)]
        except ObjectNotFound:
            return []


async def _policy_documents() -> list[BlockDocument]:
    from prefect import get_client

    async with get_client() as client:
        documents: list[BlockDocument] = await policyhistory.policy_documents(
            client, include_secrets=False)
    return documents


def _pinned(document: BlockDocument) -> dict[str, Any] | None:
    """A block document's policy as it would be pinned; None if it does not validate (``axtrace
    verify`` names it)."""
    from pydantic import ValidationError

    from axtrace_blocks import OwnershipPolicy

    try:
        return ownership.snapshot(OwnershipPolicy.model_validate(document.data))
    except ValidationError:
        return None


# --------------------------------------------------------------------------- ledger


def ledger_summaries(sites: Collection[str],
                     ) -> tuple[dict[str, OpenCounts], dict[str, dict[str, Any]]]:
    """Counts of the sites' alerts not yet resolved, and each site's last policy on record."""
    overdue = col(Alert.overdue_at).is_not(None)
    with ledger_session() as session:
        rows = session.exec(
            select(Alert.site, Alert.status, overdue, func.count())
            .where(col(Alert.site).in_(sites), col(Alert.status).in_(OPEN_STATUSES))
            .group_by(Alert.site, Alert.status, overdue)).all()
        recorded = {e.site: e.policy for e in last_changes(session, sites)}
    groups: dict[str, list[tuple[str, bool, int]]] = {}
    for site, status, late, n in rows:
        groups.setdefault(site, []).append((status, bool(late), int(n)))
    return {site: counts_of(g) for site, g in groups.items()}, recorded


def last_changes(session: Session, sites: Collection[str]) -> Sequence[PolicyChange]:
    newest = (select(func.max(PolicyChange.seq)).where(col(PolicyChange.site).in_(sites))
              .group_by(PolicyChange.site))
    return session.exec(select(PolicyChange).where(col(PolicyChange.seq).in_(newest))).all()


def ledger_page(site: str,
                ) -> tuple[list[Alert], PolicyChangeSeen | None, dict[str, Any] | None]:
    """The site's alerts not yet resolved (oldest first), its last policy change and the
    policy it put on record."""
    with ledger_session() as session:
        alerts = session.exec(
            select(Alert).where(Alert.site == site, col(Alert.status).in_(OPEN_STATUSES))
            .order_by(col(Alert.received_at), col(Alert.id))).all()
        last = policyhistory.last_for(session, site)
        return (list(alerts), policyhistory.public(last) if last else None,
                last.policy if last else None)


def history_of(site: str, limit: int) -> list[PolicyChangeSeen]:
    with ledger_session() as session:
        return [policyhistory.public(e)
                for e in policyhistory.newest_first(session, site=site, limit=limit)]
