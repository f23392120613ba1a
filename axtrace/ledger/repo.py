"""Data functions of the ledger. Keyword-only and typed; they flush, the caller commits.

Trace events are hash-chained: each stores the hash of its predecessor, so an edited or
truncated trace can be found by recomputing the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, update
from sqlmodel import Session, col, select

from axtrace.errors import NotFound
from axtrace.ledger import seal
from axtrace.ledger.models import (
    Alert,
    AlertCreate,
    OutboxItem,
    Status,
    Step,
    TraceEvent,
    utcnow,
)

GENESIS = "0" * 64
ALERT = Alert.__table__  # type: ignore[attr-defined]
TRACE = TraceEvent.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]


def open_key(*, site: str, source: str, key: str) -> str:
    return f"{site}/{source}/{key}"


def event_hash(
    *, prev_hash: str, alert_id: int, seq: int, step: str, actor: str, at: datetime,
    detail: dict[str, Any],
) -> str:
    body = json.dumps(
        [prev_hash, alert_id, seq, step, actor, at.isoformat(), detail],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def append_step(
    *, session: Session, alert_id: int, step: Step, actor: str,
    detail: dict[str, Any] | None = None, at: datetime | None = None,
) -> TraceEvent:
    """Add one step to an alert's trace (the unique (alert, seq) makes racing writers retry)."""
    last = session.exec(
        select(TraceEvent).where(TraceEvent.alert_id == alert_id)
        .order_by(col(TraceEvent.seq).desc()).limit(1)
    ).first()
    seq = last.seq + 1 if last else 1
    prev = last.hash if last else GENESIS
    when = at or utcnow()
    clean = json.loads(json.dumps(detail or {}, default=str))
    event = TraceEvent(
        alert_id=alert_id, seq=seq, step=step.value, actor=actor, at=when, detail=clean,
        prev_hash=prev,
        hash=event_hash(prev_hash=prev, alert_id=alert_id, seq=seq, step=step.value,
                        actor=actor, at=when, detail=clean),
    )
    session.add(event)
    alert = session.get(Alert, alert_id)
    if alert is not None:
        alert.trace_len, alert.trace_head = seq, event.hash
        session.add(alert)
    session.flush()
    return event


def create_alert(
    *, session: Session, alert: AlertCreate, actor: str, dispatch: bool = True,
    flow_run_id: str | None = None, at: datetime | None = None,
) -> Alert:
    """Open a new occurrence with its ``received`` step and, when asked, its outbox row."""
    when = at or utcnow()
    row = Alert.model_validate(
        alert.model_dump() | {
            "received_at": when, "status": Status.OPEN.value, "flow_run_id": flow_run_id,
            "open_key": open_key(site=alert.site, source=alert.source, key=alert.key),
        }
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    append_step(session=session, alert_id=row.id, step=Step.RECEIVED, actor=actor, at=when,
                detail=received_detail(alert))
    if dispatch:
        session.add(OutboxItem(alert_id=row.id, created_at=when, due_at=when))
        session.flush()
    return row


def received_detail(alert: AlertCreate) -> dict[str, Any]:
    """What the ``received`` step of a new occurrence records."""
    return {"source": alert.source, "key": alert.key, "severity": alert.severity,
            "title": alert.title}


def insert_alert(
    *, conn: Connection, alert: AlertCreate, actor: str, at: datetime,
    source_resolved_at: datetime | None = None,
) -> int:
    """:func:`create_alert` for the intake's hot path, in SQLAlchemy Core: four statements
    (the alert, its ``received`` step, the trace head and seals on the alert, the outbox row),
    built once, and no ORM objects. The first step's chain starts at ``GENESIS``."""
    row = {name: getattr(alert, name) for name in AlertCreate.model_fields}
    alert_id: int = conn.execute(_NEW_ALERT, {
        **_ALERT_DEFAULTS, **row, "received_at": at, "source_resolved_at": source_resolved_at,
        "open_key": open_key(site=alert.site, source=alert.source, key=alert.key),
    }).scalar_one()
    detail = json.loads(json.dumps(received_detail(alert), default=str))
    digest = event_hash(prev_hash=GENESIS, alert_id=alert_id, seq=1, step=Step.RECEIVED.value,
                        actor=actor, at=at, detail=detail)
    conn.execute(_NEW_STEP, {"alert_id": alert_id, "seq": 1, "step": Step.RECEIVED.value,
                             "actor": actor, "at": at, "detail": detail,
                             "prev_hash": GENESIS, "hash": digest})
    sealed = seal.seals(_key(), alert_id, {**_ALERT_DEFAULTS, **row, "received_at": at,
                                           "trace_len": 1, "trace_head": digest})
    conn.execute(_TRACE_HEAD, {"alert": alert_id, "length": 1, "head": digest, **sealed})
    conn.execute(_NEW_OUTBOX, {"alert_id": alert_id, "created_at": at, "due_at": at})
    return alert_id


_NEW_ALERT = insert(ALERT).returning(ALERT.c.id)
_ALERT_DEFAULTS = {
    column.name: column.default.arg for column in ALERT.columns
    if column.default is not None and not callable(column.default.arg)
} | {"status": Status.OPEN.value}
"""Every column's value is given, so each new alert compiles to the one cached INSERT."""
_NEW_STEP = insert(TRACE)
_TRACE_HEAD = update(ALERT).where(ALERT.c.id == bindparam("alert")).values(
    trace_len=bindparam("length"), trace_head=bindparam("head"),
    trace_seal=bindparam("trace_seal"), state_seal=bindparam("state_seal"))


def _key() -> bytes:
    key = seal.ledger_key()
    assert key is not None  # created when missing
    return key
_NEW_OUTBOX = insert(OUTBOX)


def get_alert(*, session: Session, alert_id: int, lock: bool = False) -> Alert:
    query = select(Alert).where(Alert.id == alert_id)
    if lock:
        query = query.with_for_update()
    alert = session.exec(query).first()
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}", field="alert_id", location="path")
    return alert


def find_by_run(*, session: Session, flow_run_id: str) -> Alert | None:
    return session.exec(select(Alert).where(Alert.flow_run_id == flow_run_id)).first()


def trace_of(*, session: Session, alert_id: int) -> Sequence[TraceEvent]:
    return session.exec(
        select(TraceEvent).where(TraceEvent.alert_id == alert_id).order_by(col(TraceEvent.seq))
    ).all()


def list_alerts(
    *, session: Session, site: str | None = None, status: str | None = None,
    since: datetime | None = None, limit: int = 100, sites: Collection[str] | None = None,
) -> Sequence[Alert]:
    """Newest first; ``sites`` (``None``: every site) bounds what ``site`` may name."""
    query = select(Alert)
    if site:
        query = query.where(Alert.site == site)
    if sites is not None:
        query = query.where(col(Alert.site).in_(sorted(sites)))
    if status:
        query = query.where(Alert.status == status)
    if since:
        query = query.where(col(Alert.received_at) >= since)
    return session.exec(
        query.order_by(col(Alert.received_at).desc(), col(Alert.id).desc()).limit(limit)
    ).all()


def due_waits(*, session: Session, now: datetime) -> Sequence[Alert]:
    """Alerts with a run to wake at ``now``: open past the acknowledge deadline or the end of
    the maintenance window that suppressed it; acknowledged past the resolve deadline (and not
    marked overdue yet) or past the next reminder. The rule of
    :func:`axtrace.workflow.wake_at`, in SQL so the indexes find them."""
    opened = and_(col(Alert.status) == Status.OPEN.value,
                  or_(col(Alert.ack_deadline) <= now, col(Alert.suppressed_until) <= now))
    acknowledged = and_(
        col(Alert.status) == Status.ACKNOWLEDGED.value,
        or_(and_(col(Alert.resolve_deadline) <= now, col(Alert.overdue_at).is_(None)),
            col(Alert.remind_at) <= now))
    return session.exec(
        select(Alert).where(
            or_(opened, acknowledged),
            col(Alert.flow_run_id).is_not(None),
        ).order_by(col(Alert.id))
    ).all()


def verify_chain(events: Sequence[TraceEvent]) -> int | None:
    """The seq of the first event whose hash does not hold, or None when the chain is whole."""
    prev = GENESIS
    for expected_seq, event in enumerate(events, start=1):
        recomputed = event_hash(
            prev_hash=prev, alert_id=event.alert_id, seq=event.seq, step=event.step,
            actor=event.actor, at=event.at, detail=event.detail,
        )
        if event.seq != expected_seq or event.prev_hash != prev or event.hash != recomputed:
            return event.seq
        prev = event.hash
    return None


def count_alerts(*, session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Alert)).one())
