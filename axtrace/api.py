"""The AxTrace HTTP API: native alert intake, alert lookup, and acting on alerts.

Errors are mapped here and only here: every 4xx names the field and the reason, in the same
shape as FastAPI's own validation errors: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from axtrace import actions
from axtrace.errors import AxTraceError, InvalidInput, NotFound, Unavailable
from axtrace.events import emit_step
from axtrace.ledger import repo
from axtrace.ledger.models import (
    Alert,
    AlertCreate,
    AlertPublic,
    Outcome,
    Status,
    Step,
    TraceEntry,
)
from axtrace.ledger.session import ledger_session
from axtrace.settings import get_settings
from axtrace_blocks import Severity

SITE_CACHE_SECONDS = 10.0


class NativeAlert(BaseModel):
    """An alert in AxTrace's own JSON format."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Site slug.")
    key: str | None = Field(
        default=None, min_length=1, max_length=255,
        description="The alert's identity at the detector; repeats while open are one occurrence.",
    )
    severity: Severity = Severity.HIGH
    title: str = Field(min_length=1, max_length=500)
    detector: str | None = Field(default=None, max_length=200)
    detector_version: str | None = Field(default=None, max_length=100)
    confidence: float | None = Field(default=None, ge=0, le=1)
    evidence_url: str | None = Field(default=None, max_length=2000)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    detected_at: datetime | None = None


class Accepted(BaseModel):
    id: int
    site: str
    status: str
    duplicate: bool = False
    repeat_count: int = 1


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    responder: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=2000)


class ResolveBody(AckBody):
    outcome: Outcome


class SiteCache:
    """Sites that have a deployment of respond-to-alert, asked of Prefect at most every 10 s."""

    def __init__(self) -> None:
        self.sites: set[str] | None = None
        self.fetched = 0.0

    async def known(self) -> set[str]:
        if self.sites is not None and time.monotonic() - self.fetched < SITE_CACHE_SECONDS:
            return self.sites
        try:
            self.sites = await _deployed_sites()
            self.fetched = time.monotonic()
        except Exception as exc:
            if self.sites is None:
                raise Unavailable(f"Prefect is unreachable: {exc}", field="site") from exc
        return self.sites


async def _deployed_sites() -> set[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    from axtrace.workflow import FLOW_NAME

    async with get_client() as client:
        deployments = await client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME]))
        )
    return {d.name for d in deployments}


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
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(title="AxTrace", version="0.1.0", lifespan=lifespan,
                  description="Alert intake and response actions of AxTrace.")
    app.state.sites = SiteCache()

    @app.exception_handler(AxTraceError)
    async def _axtrace_error(_request: Request, exc: AxTraceError) -> JSONResponse:
        return _error(exc.status_code, exc.field, exc.message, type(exc).__name__)

    @app.exception_handler(OperationalError)
    async def _db_down(_request: Request, exc: OperationalError) -> JSONResponse:
        return _error(503, None, f"ledger unavailable, try again: {exc.orig}", "Unavailable")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/alerts", status_code=202)
    async def raise_alert(body: NativeAlert, request: Request) -> Accepted:
        """Accept one alert: durable in the ledger (alert, trace, outbox) before the answer."""
        if body.site not in await request.app.state.sites.known():
            raise NotFound(
                f"unknown site '{body.site}': add it to sites.yaml and run `axtrace sites apply`",
                field="site",
            )
        return await asyncio.to_thread(_accept_native, body)

    @app.get("/v1/alerts")
    async def list_alerts(
        site: str | None = None, status: Status | None = None,
        since: datetime | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AlertPublic]:
        """Occurrences, newest first."""
        with ledger_session() as session:
            rows = repo.list_alerts(session=session, site=site, since=since, limit=limit,
                                    status=status.value if status else None)
            return [public(session, a, with_trace=False) for a in rows]

    @app.get("/v1/alerts/{alert_id}")
    async def get_alert(alert_id: int) -> AlertPublic:
        """One alert with its trace and the link to its Prefect run."""
        with ledger_session() as session:
            return public(session, repo.get_alert(session=session, alert_id=alert_id))

    @app.post("/v1/alerts/{alert_id}/ack")
    async def acknowledge(alert_id: int, body: AckBody) -> AlertPublic:
        alert = await actions.act(alert_id, "acknowledge", body.responder, note=body.note)
        with ledger_session() as session:
            return public(session, alert)

    @app.post("/v1/alerts/{alert_id}/resolve")
    async def resolve(alert_id: int, body: ResolveBody) -> AlertPublic:
        alert = await actions.act(alert_id, "resolve", body.responder, note=body.note,
                                  outcome=body.outcome.value)
        with ledger_session() as session:
            return public(session, alert)

    return app


def _accept_native(body: NativeAlert) -> Accepted:
    key = body.key or f"{body.detector or 'native'}:{body.title}"
    create = AlertCreate(
        site=body.site, key=key, source="native", severity=body.severity.value,
        title=body.title, detector=body.detector, detector_version=body.detector_version,
        confidence=body.confidence, evidence_url=body.evidence_url, labels=body.labels,
        detected_at=body.detected_at,
    )
    try:
        with ledger_session() as session:
            alert = repo.create_alert(session=session, alert=create, actor="intake:native")
            session.commit()
    except IntegrityError:
        return _repeat(create)
    emit_step(Step.RECEIVED.value, alert, {"source": "native"}, "intake:native")
    return Accepted(id=alert.id or 0, site=alert.site, status=alert.status)


def _repeat(create: AlertCreate) -> Accepted:
    """The occurrence is already open: count the repeat, start nothing new."""
    open_key = repo.open_key(site=create.site, source=create.source, key=create.key)
    with ledger_session() as session:
        alert = session.exec(select(Alert).where(Alert.open_key == open_key)).first()
        if alert is None:
            raise InvalidInput("alert could not be stored; send it again", field="key")
        alert.repeat_count += 1
        session.add(alert)
        session.commit()
        return Accepted(id=alert.id or 0, site=alert.site, status=alert.status,
                        duplicate=True, repeat_count=alert.repeat_count)


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
