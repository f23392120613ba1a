"""``GET /v1/report``: the report's figures as JSON, for dashboards and tools.

A FastAPI router the lead includes in :func:`axtrace.api.create_app`. A query parameter that
cannot be used is a 422 naming it: ``{"detail": [{"loc": ["query", "since"], ...}]}``. Reading
it needs a credential once the API is closed (:mod:`axtrace.access`); a token for some sites
gets those sites only (asking for another is 404).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request

from axtrace.access import report_sites
from axtrace.api import Reader
from axtrace.errors import AxTraceError, InvalidInput, InvalidQuery
from axtrace.ledger.models import utcnow
from axtrace.reports.model import Report
from axtrace.reports.period import make_scope
from axtrace.reports.service import code_version, current_report
from axtrace_blocks import Severity

router = APIRouter(tags=["reports"])


@router.get("/v1/report")
async def get_report(
    request: Request,
    caller: Reader,
    since: Annotated[str, Query(description="Start: 30m, 12h, 7d, 2w back from until, or an "
                                            "ISO date or datetime.")] = "7d",
    until: Annotated[str | None, Query(description="End (default now).")] = None,
    site: Annotated[list[str] | None, Query(description="Only these sites.")] = None,
    severity: Severity | None = None,
    detector: Annotated[str | None, Query(description="Detector name or name@version.")] = None,
) -> Report:
    """Figures per site and across sites, consistency and outlier flags, for one period."""
    try:
        scope = make_scope(since=since, until=until, sites=report_sites(caller, site or ()),
                           severity=severity.value if severity else None, detector=detector,
                           now=utcnow())
    except InvalidInput as exc:  # make_scope reads its arguments: here they are the query's
        raise InvalidQuery(exc.message, field=exc.field or "query") from exc
    known = {s for s in await known_sites(request) if caller.sees(s)}
    return await asyncio.to_thread(current_report, scope, known_sites=known,
                                   newest_workflow_version=code_version())


async def known_sites(request: Request) -> set[str]:
    """Deployed sites from the app's site cache, when it has one and Prefect answers."""
    cache = getattr(request.app.state, "sites", None)
    if cache is None:
        return set()
    try:
        found: set[str] = await cache.known()
    except AxTraceError:
        return set()
    return found
