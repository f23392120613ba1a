"""The dispatcher: relays outbox rows to Prefect, one flow run per occurrence.

Runs are created with ``idempotency_key=<site>:<alert id>`` (Prefect's key is unique per flow,
not per deployment, so it carries the site): a retry after a lost answer returns the same run.
While Prefect is away rows stay due and are retried with backoff; on restart the dispatcher
simply picks up the rows that are still due. Up to ``dispatch_concurrency`` rows are in flight
at once, and a finished row makes room for the next at once (:func:`pump`). On PostgreSQL
rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several dispatchers never take the same
row at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import timedelta
from functools import partial
from typing import Any

from sqlmodel import Session, col, select

from axtrace.events import emit_received
from axtrace.ledger import repo
from axtrace.ledger.models import Alert, OutboxItem, utcnow
from axtrace.ledger.session import ledger_session
from axtrace.sites import full_name
from axtrace.supervise import repeat, supervise

logger = logging.getLogger("axtrace.dispatch")
MAX_BACKOFF = 60.0
BUSY_BACKOFF = 5.0
"""A server that answered 503 is busy, not away: its rows are tried again within 5 s."""


def backoff(attempts: int, *, busy: bool) -> float:
    """Seconds until a row that failed ``attempts`` times is due again: 1, 2, 4 ... up to a
    minute while Prefect is away or the site is not deployed, up to 5 s while it is busy."""
    return min(BUSY_BACKOFF if busy else MAX_BACKOFF, 0.5 * 2.0**attempts)


def _busy(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) == 503


def idempotency_key(alert: Alert, item: OutboxItem | None = None) -> str:
    """``<site>:<alert>``; a repair's new run adds the outbox item (the old key's run died)."""
    base = f"{alert.site}:{alert.id}"
    return f"{base}:{item.id}" if item is not None and item.topic == "redispatch" else base


def _claim(session: Session, limit: int) -> list[tuple[OutboxItem, Alert]]:
    query = (
        select(OutboxItem, Alert).join(Alert, col(Alert.id) == col(OutboxItem.alert_id))
        .where(col(OutboxItem.done_at).is_(None), col(OutboxItem.due_at) <= utcnow())
        .order_by(col(OutboxItem.due_at)).limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=OutboxItem)
    rows = session.exec(query).all()
    lease = utcnow() + timedelta(seconds=30)
    for item, _alert in rows:
        item.due_at = lease  # leased: another dispatcher will not take it for 30 s
        session.add(item)
    session.commit()
    return [(item, alert) for item, alert in rows]


_deployment_ids: dict[str, Any] = {}
"""Deployment id by site: one API call per run instead of two. A site re-applied keeps its id
(Prefect upserts by name); a failed creation forgets the entry, so a re-created site is found."""


async def create_run(client: Any, alert: Alert, item: OutboxItem | None = None) -> str:
    deployment_id = _deployment_ids.get(alert.site)
    if deployment_id is None:
        deployment = await client.read_deployment_by_name(full_name(alert.site))
        deployment_id = _deployment_ids[alert.site] = deployment.id
    try:
        run = await client.create_flow_run_from_deployment(
            deployment_id,
            parameters={"site": alert.site, "alert_id": alert.id},
            idempotency_key=idempotency_key(alert, item),
            tags=[f"site:{alert.site}", f"severity:{alert.severity}"],
        )
    except Exception:
        _deployment_ids.pop(alert.site, None)
        raise
    return str(run.id)


async def wake(client: Any, alert: Alert) -> bool:
    """Resume the alert's waiting run with an empty answer; False while it is not waiting.

    Used when a source resolved the alert: the flow sees ``source_resolved_at`` and resolves.
    """
    from prefect.client.schemas.responses import SetStateStatus

    if alert.status in ("resolved", "closed"):
        return True
    if alert.flow_run_id is None:
        return False
    run = await client.read_flow_run(alert.flow_run_id)
    if run.state is None or not run.state.is_paused():
        return run.state is not None and run.state.is_final()
    result = await client.resume_flow_run(run.id, run_input={})
    return bool(result.status == SetStateStatus.ACCEPT)


def _finish(item_id: int, alert_id: int, *, done: bool, run_id: str | None = None,
            error: str | None = None, busy: bool = False) -> None:
    with ledger_session() as session:
        item = session.get(OutboxItem, item_id)
        if item is None:
            return
        now = utcnow()
        if done:
            item.done_at = now
            alert = repo.get_alert(session=session, alert_id=alert_id)
            if run_id and alert.flow_run_id is None:
                alert.flow_run_id = run_id
                session.add(alert)
        else:
            item.attempts += 1
            item.last_error = (error or "")[:2000]
            item.due_at = now + timedelta(seconds=backoff(item.attempts, busy=busy))
        session.add(item)
        session.commit()


async def relay(client: Any, item: OutboxItem, alert: Alert) -> bool:
    """Relay one leased row: create its run (and announce the alert) or wake its run; the
    row is done, or due again later."""
    try:
        if item.topic == "wake":
            done = await wake(client, alert)
            error = None if done else "run not waiting yet"
            await asyncio.to_thread(_finish, item.id or 0, alert.id or 0, done=done, error=error)
            return done
        run_id = await create_run(client, alert, item)
        if item.topic == "dispatch":  # the first relay announces the alert (see events.py)
            emit_received(alert, source=alert.source, received_at=alert.received_at,
                          run_id=run_id)
    except Exception as exc:  # Prefect away or site not deployed: retry later
        logger.warning("%s of alert %s failed: %s", item.topic, alert.id, exc)
        await asyncio.to_thread(_finish, item.id or 0, alert.id or 0, done=False,
                                error=repr(exc), busy=_busy(exc))
        return False
    await asyncio.to_thread(_finish, item.id or 0, alert.id or 0, done=True, run_id=run_id)
    return True


def claim(limit: int) -> list[tuple[OutboxItem, Alert]]:
    """Lease up to ``limit`` due rows (none when ``limit`` is 0)."""
    if limit <= 0:
        return []
    with ledger_session() as session:
        return _claim(session, limit)


Handler = Callable[[OutboxItem, Alert], Coroutine[Any, Any, bool]]


async def pump(handle: Handler, stop: asyncio.Event, due: asyncio.Event, *, interval: float,
               concurrency: int, lease: Callable[[int], list[tuple[OutboxItem, Alert]]] = claim,
               ) -> None:
    """Keep up to ``concurrency`` rows in flight, claiming more the moment one finishes.

    Not batch by batch: a batch waited for its slowest call, so one run creation that Prefect
    kept busy held back every alert behind it (a minute at 1 alert/s on SQLite). ``due`` is
    set by :func:`nudge` and by each finished row; ``interval`` is the poll backstop.
    """
    inflight: set[asyncio.Task[bool]] = set()

    def finished(task: asyncio.Task[bool]) -> None:
        inflight.discard(task)
        due.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("outbox row failed; retried after its lease",
                         exc_info=task.exception())

    async def claim_more() -> bool:
        room = concurrency - len(inflight)
        claimed = await asyncio.to_thread(lease, room)
        for item, alert in claimed:
            task = asyncio.create_task(handle(item, alert))
            inflight.add(task)
            task.add_done_callback(finished)
        return bool(claimed) and len(claimed) == room  # more may be due: claim again at once

    try:
        await repeat(stop, claim_more, interval=interval, wake=due)
    finally:
        if inflight:
            await asyncio.gather(*inflight, return_exceptions=True)


_due: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}


def nudge() -> None:
    """Tell this process's dispatchers that an outbox row is due now (the intake calls this
    after its commit), so the row is relayed without waiting for the next poll. Safe from any
    thread; the poll stays as the backstop (other processes' rows, retries)."""
    for loop, due in list(_due.items()):
        if loop.is_closed():
            _due.pop(loop, None)
        else:
            loop.call_soon_threadsafe(due.set)


async def run_dispatcher(stop: asyncio.Event, *, interval: float, concurrency: int) -> None:
    from axtrace.prefect_client import quick_client

    due = _due.setdefault(asyncio.get_running_loop(), asyncio.Event())

    async def connected() -> None:
        async with quick_client() as client:
            await pump(partial(relay, client), stop, due, interval=interval,
                       concurrency=concurrency)

    await supervise("dispatch", stop, connected, interval=interval)
