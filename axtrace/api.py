"""The AxTrace HTTP API: native alert intake, alert lookup, and acting on alerts.

Errors are mapped here and only here: every 4xx names the field and the reason, in the same
shape as FastAPI's own validation errors: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``.

Who may read and act is decided by :mod:`axtrace.access` (closed once any credential is
configured); every request first passes :class:`Guard` (``Host`` allow-list, no cross-origin
request, JSON-only POST bodies), and in open mode every answer carries ``X-AxTrace-Open: true``.

No input is a 500: a header value over ``AXTRACE_MAX_HEADER_CHARS`` (or a ``webhook-id`` over
255 characters) is a 400 naming the header; bodies over ``AXTRACE_MAX_BODY_BYTES`` are 413;
what the source parsers refuse is recorded and answered 400/404/409/413/422 (see
:mod:`axtrace.intake.registry`); a ``since`` without a UTC offset is taken as UTC.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from axtrace import access, actions, tokens
from axtrace.dispatch import nudge
from axtrace.errors import AxTraceError, Forbidden, Malformed, TooLarge, Unavailable
from axtrace.intake.auth import authenticate, needs_io, reveal
from axtrace.intake.docs import INTAKE_RESPONSES, intake_docs, intake_openapi
from axtrace.intake.registry import SOURCES
from axtrace.intake.service import Incoming, Reply, UnknownSite, prepare
from axtrace.intake.sources._common import join
from axtrace.intake.writer import Writer
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import (
    Alert,
    AlertPublic,
    Outcome,
    Status,
    TraceEntry,
)
from axtrace.ledger.session import ledger_session
from axtrace.settings import Settings, get_settings

SITE_CACHE_SECONDS = 10.0
UNKNOWN_SITE_RECHECK_SECONDS = 1.0
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The alert's id.")]


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    responder: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Who acts; with a responder token, the token's name decides (and this, "
                    "if given, must match it, else 403 recorded under the token's name).",
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


def _error(status: int, field: str | None, message: str, kind: str,
           location: str = "body") -> JSONResponse:
    loc = [location, *field.split(".")] if field else []
    return JSONResponse(status_code=status,
                        content={"detail": [{"loc": loc, "msg": message, "type": kind}]})


def error_of(exc: AxTraceError) -> JSONResponse:
    return _error(exc.status_code, exc.field, exc.message, type(exc).__name__, exc.location)


def map_errors(app: FastAPI) -> None:
    """The one place errors become responses: AxTrace's by :func:`error_of`, a ledger that is
    away or a write that lost a race as 503."""

    @app.exception_handler(AxTraceError)
    async def _axtrace_error(_request: Request, exc: AxTraceError) -> JSONResponse:
        return error_of(exc)

    @app.exception_handler(OperationalError)
    async def _db_down(_request: Request, exc: OperationalError) -> JSONResponse:
        return _error(503, None, "the ledger is unavailable; send it again later",
                      "Unavailable")

    @app.exception_handler(IntegrityError)
    async def _raced(_request: Request, _exc: IntegrityError) -> JSONResponse:
        return _error(503, None, "a concurrent write won; send it again", "Unavailable")


def create_app(*, background: bool = True, bound_to: str | None = None) -> FastAPI:
    """The API; with ``background`` it also runs the dispatcher and the deadline sweeper.
    ``bound_to``: the interface it listens on (a ``Host`` naming it is allowed)."""

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
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(title="AxTrace", version="0.1.0", lifespan=lifespan,
                  description="Alert intake and response actions of AxTrace.")
    app.state.sites = SiteCache()
    app.state.open_flag = OpenFlag()
    settings = get_settings()
    own = [settings.api_host, access.hostname(settings.base_api_url.partition("//")[2]),
           *([bound_to] if bound_to else [])]
    app.add_middleware(Guard, hosts=access.allowed_hosts(settings.allowed_hosts, own=own),
                       flag=app.state.open_flag)
    from axtrace.reports.api import router as report_router

    app.include_router(report_router)
    from axtrace.sitepages_api import router as sites_router

    app.include_router(sites_router)
    map_errors(app)

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
        caller: Reader, site: str | None = None, status: Status | None = None,
        since: Annotated[datetime | None, Query(
            description="Only alerts received since then (ISO 8601; without an offset: UTC)."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AlertPublic]:
        """Occurrences, newest first (with a token for some sites: of those sites)."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        with ledger_session() as session:
            rows = repo.list_alerts(session=session, site=site, since=since, limit=limit,
                                    status=status.value if status else None,
                                    sites=caller.sites)
            return [public(session, a, with_trace=False) for a in rows]

    @app.get("/v1/alerts/{alert_id}")
    def get_alert(alert_id: AlertId, caller: Reader) -> AlertPublic:
        """One alert with its trace and the link to its Prefect run."""
        with ledger_session() as session:
            alert = repo.get_alert(session=session, alert_id=alert_id)
            access.visible(caller, alert.site, alert_id)
            return public(session, alert)

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
    401: {"description": "A token is required and missing or not valid."},
    403: {"description": "Not a responder at this level (recorded in the trace), or a "
                         "token that may not act."},
    404: {"description": "No such alert (or one of a site the token does not cover)."},
    409: {"description": "The alert's state does not allow this now (recorded)."},
    503: {"description": "The run is not waiting yet, or Prefect/the ledger is away."},
}


def posture_of(session: Session, settings: Settings) -> access.Posture:
    return access.Posture(
        credentials=not settings.intake_open,
        tokens_required=settings.require_responder_tokens or tokens.required(session))


def caller_of(session: Session, headers: Mapping[str, str], settings: Settings,
              ) -> access.Caller:
    """What the request's bearer token is: the intake token, a ledger token, or nothing."""
    scheme, _, given = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return access.NOBODY
    intake = settings.intake_token
    if intake is not None and hmac.compare_digest(given.encode(), reveal(intake).encode()):
        return access.Caller("intake")
    row = tokens.identify(session, given)
    if row is None:
        return access.Caller("invalid")
    kind: access.Kind = "read" if row.scope == "read" else "respond"
    return access.Caller(kind, row.name, frozenset(row.sites) if row.sites else None)


def allowed(request: Request, need: access.Need) -> access.Caller:
    """The caller, if it may ``need`` (else the 401/403 of :func:`access.decide`)."""
    settings = get_settings()
    with ledger_session() as session:
        posture = posture_of(session, settings)
        caller = caller_of(session, request.headers, settings)
    flag: OpenFlag | None = getattr(request.app.state, "open_flag", None)
    if flag is not None:
        flag.saw(posture)
    access.decide(need, posture, caller)
    return caller


def reader(request: Request) -> access.Caller:
    return allowed(request, "read")


Reader = Annotated[access.Caller, Depends(reader)]
"""A caller that may read (FastAPI runs this plain function on its thread pool)."""


def responder(request: Request, body: AckBody, alert_id: int, action: str) -> str:
    """Who acts: the responder token's name when one authenticates the request (a different
    ``responder`` in the body is refused and recorded under the token's name), else the
    body's name."""
    caller = allowed(request, "act")
    with ledger_session() as session:
        access.visible(caller, repo.get_alert(session=session, alert_id=alert_id).site,
                       alert_id)
    who = access.actor(caller, body.responder)
    if body.responder is not None and body.responder != who:
        reason = f"the token belongs to '{who}', not '{body.responder}'"
        actions.record_refusal(alert_id, who, action, reason)
        raise Forbidden(reason, field="responder")
    return who


class OpenFlag:
    """Is the API open (no credential anywhere)? The settings answer at once; the ledger's
    ``tokens_required`` is asked at most once a second while open (for the header only:
    reads and actions ask the ledger each time). Once closed it stays closed: nothing clears
    ``tokens_required``."""

    def __init__(self) -> None:
        self.closed = False
        self.checked = 0.0

    def saw(self, posture: access.Posture) -> None:
        self.closed = self.closed or not posture.open

    async def open(self) -> bool:
        if self.closed:
            return False
        if time.monotonic() - self.checked > 1.0:
            settings = get_settings()
            try:
                posture = await asyncio.to_thread(_posture, settings)
            except OperationalError:
                return False  # the ledger is away: the request itself will say so
            self.saw(posture)
            self.checked = time.monotonic()
        return not self.closed


def _posture(settings: Settings) -> access.Posture:
    with ledger_session() as session:
        return posture_of(session, settings)


class Guard:
    """Around every request: :func:`access.browser_safe` (a bad ``Host``, a cross-origin
    request, a POST that is not JSON are answered here, before routing), and in open mode the
    header ``X-AxTrace-Open: true`` on every response. No CORS header is ever sent."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str], flag: OpenFlag) -> None:
        self.app = app
        self.hosts = hosts
        self.flag = flag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_open = await self.flag.open()

        async def marked(message: Message) -> None:
            if is_open and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (access.OPEN_HEADER.encode(), b"true")]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        try:
            if scope["path"] != "/healthz":  # says only "ok": load balancers probe by address
                access.browser_safe(scope["method"], headers, self.hosts)
        except AxTraceError as exc:
            await error_of(exc)(scope, receive, marked)
            return
        await self.app(scope, receive, marked)


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
