"""The AxTrace HTTP API: native alert intake, alert lookup, and acting on alerts.

Errors are mapped here and only here: every 4xx names the field and the reason, in the same
shape as FastAPI's own validation errors: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``.

No input is a 500: a header value over ``AXTRACE_MAX_HEADER_CHARS`` (or a ``webhook-id`` over
255 characters) is a 400 naming the header; bodies over ``AXTRACE_MAX_BODY_BYTES`` are 413;
what the source parsers refuse is recorded and answered 400/404/409/413/422 (see
:mod:`axtrace.intake.registry`); a ``since`` without a UTC offset is taken as UTC.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from axtrace import actions, tokens
from axtrace.dispatch import nudge
from axtrace.errors import AxTraceError, Forbidden, InvalidInput, Malformed, Unavailable
from axtrace.events import StepEvents
from axtrace.intake.auth import authenticate, needs_io
from axtrace.intake.docs import INTAKE_RESPONSES, intake_docs, intake_openapi
from axtrace.intake.registry import SOURCES
from axtrace.intake.service import Incoming, Reply, UnknownSite, prepare
from axtrace.intake.signatures import SignatureError
from axtrace.intake.sources._common import join
from axtrace.intake.writer import Writer
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import (
    Alert,
    AlertPublic,
    Outcome,
    Status,
    Step,
    TraceEntry,
)
from axtrace.ledger.session import ledger_session
from axtrace.settings import Settings, get_settings

SITE_CACHE_SECONDS = 10.0
UNKNOWN_SITE_RECHECK_SECONDS = 1.0
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The alert's id.")]


class TooLarge(AxTraceError):
    status_code = 413


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    responder: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Who acts; with responder tokens in use, the token decides (and this, "
                    "if given, must match it).",
    )
    note: str = Field(default="", max_length=2000)


class ResolveBody(AckBody):
    outcome: Outcome


class SiteCache:
    """Sites that have a deployment of respond-to-alert (or a fixed list from
    ``AXTRACE_KNOWN_SITES``), asked of Prefect off the request path.

    The first request waits for the first answer. After that a request never waits: an answer
    older than 10 s is refreshed in the background while requests use it. A delivery naming a
    site the cache does not know asks Prefect again (at most once a second) before it is
    rejected, so a site just applied is accepted at once. While Prefect is away the last answer
    stands."""

    def __init__(self) -> None:
        fixed = get_settings().known_sites
        self.fixed = {s.strip() for s in fixed.split(",") if s.strip()} if fixed else None
        self.sites: set[str] | None = None
        self.fetched = 0.0
        self.refreshing = asyncio.Lock()
        self.background: asyncio.Task[set[str]] | None = None

    def fresh(self, max_age: float = SITE_CACHE_SECONDS) -> bool:
        return self.sites is not None and time.monotonic() - self.fetched < max_age

    async def known(self) -> set[str]:
        if self.fixed is not None:
            return self.fixed
        if self.sites is None:
            return await self.refreshed(max_age=SITE_CACHE_SECONDS)
        if not self.fresh() and (self.background is None or self.background.done()):
            # raises only before a first answer, and there is one: nothing to lose
            self.background = asyncio.create_task(self.refreshed(max_age=SITE_CACHE_SECONDS))
        return self.sites

    async def refreshed(self, *, max_age: float = UNKNOWN_SITE_RECHECK_SECONDS) -> set[str]:
        """The sites, asked of Prefect now unless the answer is younger than ``max_age``."""
        if self.fixed is not None:
            return self.fixed
        async with self.refreshing:  # one refresh at a time; the others wait and reuse it
            if self.fresh(max_age):
                return self.sites or set()
            try:
                self.sites = await _deployed_sites()
                self.fetched = time.monotonic()
            except Exception as exc:
                if self.sites is None:
                    raise Unavailable(f"Prefect is unreachable: {exc}", field="site") from exc
        return self.sites or set()


async def _deployed_sites() -> set[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    from axtrace.workflow import FLOW_NAME

    sites: set[str] = set()
    async with get_client() as client:
        while True:  # the server answers at most 200 per page
            page = await client.read_deployments(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
                limit=200, offset=len(sites),
            )
            sites |= {d.name for d in page}
            if len(page) < 200:
                return sites


def _error(status: int, field: str | None, message: str, kind: str) -> JSONResponse:
    loc = ["body", *field.split(".")] if field else []
    return JSONResponse(status_code=status,
                        content={"detail": [{"loc": loc, "msg": message, "type": kind}]})


def create_app(*, background: bool = True) -> FastAPI:
    """The API; with ``background`` it also runs the dispatcher and the deadline sweeper."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if background:
            from axtrace.dispatch import run_dispatcher
            from axtrace.sweeper import run_sweeper

            settings = get_settings()
            tasks = [
                asyncio.create_task(run_dispatcher(
                    stop, interval=settings.dispatch_seconds,
                    concurrency=settings.dispatch_concurrency)),
                asyncio.create_task(run_sweeper(stop, interval=settings.sweep_seconds)),
            ]
        yield
        app.state.events.flush()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(title="AxTrace", version="0.1.0", lifespan=lifespan,
                  description="Alert intake and response actions of AxTrace.")
    app.state.sites = SiteCache()
    app.state.events = StepEvents()
    from axtrace.reports.api import router as report_router

    app.include_router(report_router)

    @app.exception_handler(AxTraceError)
    async def _axtrace_error(_request: Request, exc: AxTraceError) -> JSONResponse:
        return _error(exc.status_code, exc.field, exc.message, type(exc).__name__)

    @app.exception_handler(OperationalError)
    async def _db_down(_request: Request, exc: OperationalError) -> JSONResponse:
        return _error(503, None, "the ledger is unavailable; send it again later",
                      "Unavailable")

    @app.exception_handler(IntegrityError)
    async def _raced(_request: Request, _exc: IntegrityError) -> JSONResponse:
        return _error(503, None, "a concurrent write won; send it again", "Unavailable")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for source in SOURCES:
        app.add_api_route(
            "/v1/alerts" if source == "native" else f"/v1/alerts/{source}",
            _intake_route(source), methods=["POST"], status_code=202,
            summary=f"Deliver alerts ({source})", tags=["intake"],
            description=intake_docs(source), openapi_extra=intake_openapi(source),
            responses=INTAKE_RESPONSES,
        )

    @app.get("/v1/alerts")
    def list_alerts(
        site: str | None = None, status: Status | None = None,
        since: Annotated[datetime | None, Query(
            description="Only alerts received since then (ISO 8601; without an offset: UTC)."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AlertPublic]:
        """Occurrences, newest first."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        with ledger_session() as session:
            rows = repo.list_alerts(session=session, site=site, since=since, limit=limit,
                                    status=status.value if status else None)
            return [public(session, a, with_trace=False) for a in rows]

    @app.get("/v1/alerts/{alert_id}")
    def get_alert(alert_id: AlertId) -> AlertPublic:
        """One alert with its trace and the link to its Prefect run."""
        with ledger_session() as session:
            return public(session, repo.get_alert(session=session, alert_id=alert_id))

    @app.post("/v1/alerts/{alert_id}/ack", responses=ACT_RESPONSES)
    async def acknowledge(alert_id: AlertId, body: AckBody, request: Request) -> AlertPublic:
        """Acknowledge: only a responder at the alert's level or an earlier one may."""
        who = await asyncio.to_thread(responder, request, body, alert_id, "acknowledge")
        alert = await actions.act(alert_id, "acknowledge", who, note=body.note)
        return await asyncio.to_thread(public_of, alert)

    @app.post("/v1/alerts/{alert_id}/resolve", responses=ACT_RESPONSES)
    async def resolve(alert_id: AlertId, body: ResolveBody, request: Request) -> AlertPublic:
        """Resolve an acknowledged or ignored alert with its outcome (reason code)."""
        who = await asyncio.to_thread(responder, request, body, alert_id, "resolve")
        alert = await actions.act(alert_id, "resolve", who, note=body.note,
                                  outcome=body.outcome.value)
        return await asyncio.to_thread(public_of, alert)

    return app


INLINE_PARSE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop (well under a millisecond); larger
ones on a worker thread, so a 1 MiB body does not hold up every other request."""


def _intake_route(source: str) -> Any:
    async def deliver(request: Request) -> JSONResponse:
        settings = get_settings()
        check_headers(request.headers, settings.max_header_chars)
        raw = await read_body(request, settings.max_body_bytes)
        if needs_io(source, settings):  # a secret kept in a Prefect block: may ask Prefect
            webhook_id = await asyncio.to_thread(authenticate, source, request.headers, raw,
                                                 settings)
        else:  # a few microseconds of hashing: not worth a thread
            webhook_id = authenticate(source, request.headers, raw, settings)
        cache: SiteCache = request.app.state.sites
        incoming = await _prepared(source, raw, webhook_id, await cache.known(), settings)
        if isinstance(incoming.parsed, UnknownSite):  # a site applied a moment ago?
            incoming = await _prepared(source, raw, webhook_id, await cache.refreshed(),
                                       settings)
        reply = await _writer(request.app).write(incoming)
        if reply.status == 202:
            nudge()  # committed: this process's dispatcher relays it now, not at its next poll
        events: StepEvents = request.app.state.events
        for alert in reply.created:
            events.add(Step.RECEIVED.value, alert, {"source": source}, f"intake:{source}")
        if source == "pagerduty":
            return pagerduty_reply(reply)
        if reply.status >= 400:
            return _error(reply.status, reply.field, reply.body["error"], reply.kind)
        return JSONResponse(reply.body, status_code=reply.status)

    deliver.__name__ = f"deliver_{source.replace('-', '_')}"
    return deliver


async def _prepared(
    source: str, raw: bytes, webhook_id: str | None, sites: set[str], settings: Settings,
) -> Incoming:
    if len(raw) <= INLINE_PARSE_BYTES:
        return prepare(source=source, raw=raw, webhook_id=webhook_id, known_sites=sites,
                       settings=settings)
    return await asyncio.to_thread(prepare, source=source, raw=raw, webhook_id=webhook_id,
                                   known_sites=sites, settings=settings)


def _writer(app: FastAPI) -> Writer:
    """The app's ledger writer (made on first use: the ledger URL is read then)."""
    writer: Writer | None = getattr(app.state, "writer", None)
    if writer is None:
        settings = get_settings()
        writer = app.state.writer = Writer(engine_for(settings.ledger_url,
                                                      settings.db_busy_timeout))
    return writer


MAX_WEBHOOK_ID_CHARS = 255
"""A ``webhook-id`` is stored with the delivery (the ledger's column holds 255)."""


def check_headers(headers: Mapping[str, str], limit: int) -> None:
    """Refuse (400, naming the header) a header value over ``limit`` characters, or a
    ``webhook-id`` over :data:`MAX_WEBHOOK_ID_CHARS`: no header reaches a parser, a
    signature check or the ledger unbounded."""
    for name, value in headers.items():
        if len(value) > limit:
            raise Malformed(f"header value is longer than {limit} characters ({len(value)})",
                            field=join("", name.lower()))
    webhook_id = headers.get("webhook-id")
    if webhook_id is not None and len(webhook_id) > MAX_WEBHOOK_ID_CHARS:
        raise Malformed(f"is longer than {MAX_WEBHOOK_ID_CHARS} characters ({len(webhook_id)})",
                        field="webhook-id")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes (413) without reading it all first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes is over the limit of {limit}", field="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body is over the limit of {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def pagerduty_reply(reply: Reply) -> JSONResponse:
    """Answer like PagerDuty's Events API v2: 202 with the dedup_key, 400 with errors."""
    if reply.status >= 400:
        where = f"{reply.field}: " if reply.field else ""
        # invalid events are 400 as at PagerDuty; a reused webhook-id (409) or too many
        # alerts (413) keep their own status
        return JSONResponse(status_code=reply.status if reply.status in (409, 413) else 400,
                            content={
            "status": "invalid event", "message": "Event object is invalid",
            "errors": [f"{where}{reply.body['error']}"]})
    keys = [a.get("key") for a in reply.body.get("alerts", [])]
    return JSONResponse(status_code=202, content={
        "status": "success", "message": "Event processed",
        "dedup_key": keys[0] if keys else None, **reply.body})


ACT_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "A responder token is required and missing or not valid."},
    403: {"description": "Not a responder at this level (recorded in the trace)."},
    404: {"description": "No such alert."},
    409: {"description": "The alert's state does not allow this now (recorded)."},
    503: {"description": "The run is not waiting yet, or Prefect/the ledger is away."},
}


def responder(request: Request, body: AckBody, alert_id: int, action: str) -> str:
    """Who acts: the responder token's owner when tokens are in use, else the body's name."""
    settings = get_settings()
    with ledger_session() as session:
        if not tokens.enforced(session, required=settings.require_responder_tokens):
            if body.responder is None:
                raise InvalidInput("responder is required", field="responder")
            return body.responder
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        name = tokens.identify(session, token) if scheme.lower() == "bearer" else None
    if name is None:
        raise SignatureError("a valid responder token is required", field="authorization")
    if body.responder is not None and body.responder != name:
        actions.record_refusal(alert_id, body.responder, action,
                               f"the token belongs to '{name}', not '{body.responder}'")
        raise Forbidden(f"the token belongs to '{name}', not '{body.responder}'",
                        field="responder")
    return name


def public_of(alert: Alert) -> AlertPublic:
    with ledger_session() as session:
        return public(session, alert)


def public(session: Session, alert: Alert, *, with_trace: bool = True) -> AlertPublic:
    trace = repo.trace_of(session=session, alert_id=alert.id or 0) if with_trace else []
    data: dict[str, Any] = alert.model_dump()
    data["trace"] = [TraceEntry.model_validate(e, from_attributes=True) for e in trace]
    data["flow_run_url"] = run_url(alert.flow_run_id)
    return AlertPublic.model_validate(data)


def run_url(flow_run_id: str | None) -> str | None:
    if not flow_run_id:
        return None
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None
