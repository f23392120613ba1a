"""SQLModel tables of the ledger and the shapes that cross its boundary.

``Alert`` is one occurrence: one firing of one alert identity at one site, with exactly one
flow run. ``TraceEvent`` rows are its append-only, hash-chained timeline. ``OutboxItem`` rows
are written in the same transaction as the alert and relayed to Prefect by the dispatcher.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, TypeDecorator, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always gives back an aware datetime (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), index=index, nullable=nullable))


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IGNORED = "ignored"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Step(StrEnum):
    RECEIVED = "received"
    ASSIGNED = "assigned"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    IGNORED = "ignored"
    REFUSED = "refused"
    REMINDED = "reminded"
    OVERDUE = "overdue"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REPAIRED = "repaired"
    SUPPRESSED = "suppressed"
    RELEASED = "released"


ACK_DEADLINE_PASSED = "acknowledge deadline passed"
RESOLVE_DEADLINE_PASSED = "resolve deadline passed"
"""The ``reason`` of an ``escalated`` step, by the deadline that passed."""


class Outcome(StrEnum):
    FIXED = "fixed"
    FALSE_POSITIVE = "false_positive"
    DUPLICATE = "duplicate"
    KNOWN_ISSUE = "known_issue"
    RESOLVED_AT_SOURCE = "resolved_at_source"


HUMAN_OUTCOMES: tuple[str, ...] = ("fixed", "false_positive", "duplicate", "known_issue")
"""Outcomes a person may choose; ``resolved_at_source`` is the source's own."""


class AlertBase(SQLModel):
    site: str = Field(max_length=63, index=True)
    key: str = Field(max_length=255, description="The alert's identity at its source.")
    source: str = Field(default="native", max_length=32)
    severity: str = Field(default="high", max_length=16)
    title: str = Field(max_length=500)
    detector: str | None = Field(default=None, max_length=200)
    detector_version: str | None = Field(default=None, max_length=100)
    confidence: float | None = None
    evidence_url: str | None = Field(default=None, max_length=2000)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Alert(AlertBase, table=True):
    """One occurrence and where its response stands."""

    __table_args__ = (
        UniqueConstraint("open_key", name="uq_alert_open_key"),
        Index("ix_alert_site_received", "site", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    detected_at: datetime | None = _ts()
    received_at: datetime = _ts(index=True, nullable=False)
    status: str = Field(default=Status.OPEN.value, max_length=16, index=True)
    open_key: str | None = Field(
        default=None, max_length=400, description="site/source/key while open; NULL once closed."
    )
    repeat_count: int = 1
    level: int = Field(default=0, description="Current escalation level, 1-based; 0 = unassigned.")
    notified_level: int = Field(default=0, description="Highest level notified so far.")
    wait_seq: int = Field(
        default=0, description="Answers the run has taken; names its next wait (pause key)."
    )
    owner: str | None = Field(default=None, max_length=200)
    ack_deadline: datetime | None = _ts(index=True)
    resolve_deadline: datetime | None = _ts(index=True)
    remind_at: datetime | None = _ts(index=True)
    """When the level an acknowledged alert sits at is reminded next (its ``remind_every``)."""
    overdue_at: datetime | None = _ts()
    """When the last level's resolve deadline passed: nothing escalates any more."""
    suppressed_until: datetime | None = _ts(index=True)
    """While a maintenance window holds the alert back: when it ends (then it is released)."""
    acknowledged_at: datetime | None = _ts()
    acknowledged_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = _ts()
    resolved_by: str | None = Field(default=None, max_length=200)
    outcome: str | None = Field(default=None, max_length=32)
    closed_at: datetime | None = _ts()
    workflow_version: str | None = Field(default=None, max_length=100)
    policy_version: str | None = Field(default=None, max_length=100)
    policy: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON), description="The policy pinned when the run started."
    )
    on_call: dict[str, list[str]] | None = Field(
        default=None, sa_column=Column(JSON),
        description="Who was on call at each level the alert reached (level as text to names; "
                    "a level not in it is called by its responders).")
    flow_run_id: str | None = Field(default=None, max_length=36, index=True)
    starts_at: datetime | None = _ts()
    source_resolved_at: datetime | None = _ts()
    trace_len: int = Field(default=0, description="Steps in the trace (finds truncation).")
    trace_head: str = Field(default="0" * 64, max_length=64, description="Hash of the last step.")
    trace_seal: str | None = Field(
        default=None, max_length=64, description="HMAC of id, trace_len and trace_head (keyed)."
    )
    state_seal: str | None = Field(
        default=None, max_length=64, description="HMAC of the decisive columns (keyed)."
    )


class TraceEvent(SQLModel, table=True):
    """One step of one alert's response; never updated, never deleted."""

    __tablename__ = "trace_event"
    __table_args__ = (
        UniqueConstraint("alert_id", "seq", name="uq_trace_alert_seq"),
        # Covers the reports' per-alert pass over steps without reading table rows.
        Index("ix_trace_alert_seq_step", "alert_id", "seq", "step"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    seq: int = Field(description="Position in the alert's trace, from 1.")
    step: str = Field(max_length=32, index=True)
    actor: str = Field(max_length=200)
    at: datetime = _ts(index=True, nullable=False)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class OutboxItem(SQLModel, table=True):
    """Work the dispatcher owes Prefect: create the alert's flow run."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    topic: str = Field(default="dispatch", max_length=32)
    created_at: datetime = _ts(nullable=False)
    due_at: datetime = _ts(index=True, nullable=False)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    done_at: datetime | None = _ts(index=True)


class Delivery(SQLModel, table=True):
    """One HTTP delivery to the intake, accepted or rejected, kept so operators can find it."""

    __table_args__ = (
        UniqueConstraint("source", "webhook_id", name="uq_delivery_webhook_id"),
        Index("ix_delivery_source_body", "source", "body_sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    received_at: datetime = _ts(index=True, nullable=False)
    webhook_id: str | None = Field(default=None, max_length=255)
    body_sha256: str = Field(max_length=64)
    body: str = Field(description="The raw body as text (invalid UTF-8 replaced).")
    status: str = Field(max_length=16, index=True, description="accepted or rejected.")
    http_status: int
    reason: str | None = Field(default=None, max_length=2000)
    field: str | None = Field(default=None, max_length=300)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SourceResolution(SQLModel, table=True):
    """A resolve from a source that arrived before its firing; the firing then closes at once."""

    __tablename__ = "source_resolution"

    id: int | None = Field(default=None, primary_key=True)
    open_key: str = Field(max_length=400, index=True)
    starts_at: datetime | None = _ts()
    received_at: datetime = _ts(nullable=False)


class Heartbeat(SQLModel, table=True):
    """What the ledger knows of one detector a site must hear from: when it was last heard
    (or first watched), and the alert its current silence raised, if any."""

    __table_args__ = (UniqueConstraint("site", "detector", name="uq_heartbeat_site_detector"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = Field(max_length=63)
    detector: str = Field(max_length=200)
    watched_since: datetime = _ts(nullable=False)
    """When the check first saw it in the policy, or its first heartbeat: silence counts from
    here until a heartbeat comes."""
    last_seen_at: datetime | None = _ts()
    last_via: str | None = Field(default=None, max_length=32, description="api or alertmanager.")
    beats: int = Field(default=0, description="Heartbeats received.")
    silent_alert_id: int | None = Field(
        default=None, foreign_key="alert.id",
        description="The alert this silence raised; cleared by the next heartbeat.")


class ResponderToken(SQLModel, table=True):
    """A person's API token; only its SHA-256 is kept (the token is shown once, at creation).

    ``scope`` is ``respond`` (read, acknowledge, resolve) or ``read``; ``sites`` lists the
    sites it covers (``None``: every site)."""

    __tablename__ = "responder_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts(nullable=False)
    revoked_at: datetime | None = _ts()
    scope: str = Field(default="respond", max_length=16)
    sites: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class LedgerSetting(SQLModel, table=True):
    """A setting that belongs to the ledger, not to one process (e.g. that tokens are
    required: written when the first token is created, never cleared)."""

    __tablename__ = "ledger_setting"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
    set_at: datetime = _ts(nullable=False)


class PolicyChange(SQLModel, table=True):
    """One change of a site's ownership policy, hash-chained across all sites like a trace."""

    __tablename__ = "policy_change"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True, description="Position in the chain of all changes, from 1.")
    site: str = Field(max_length=63, index=True)
    at: datetime = _ts(index=True, nullable=False)
    origin: str = Field(max_length=32, description="sites apply, or prefect-ui (detected).")
    actor: str = Field(max_length=200, description="The OS user of sites apply, else unknown.")
    where: str | None = Field(default=None, max_length=1000, description="The sites file.")
    old_version: str | None = Field(default=None, max_length=100)
    new_version: str = Field(max_length=100)
    policy: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False),
                                   description="The policy as it is from this change on.")
    changes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False),
        description="Field by field: {field, kind, before, after}.")
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AlertCreate(AlertBase):
    """What an intake or a manual run gives the ledger to open an occurrence."""

    detected_at: datetime | None = None
    starts_at: datetime | None = None


class TraceEntry(SQLModel):
    """One step as shown to people and API clients."""

    seq: int
    step: str
    actor: str
    at: datetime
    detail: dict[str, Any]


class AlertPublic(AlertBase):
    """An alert as the API returns it."""

    id: int
    status: str
    level: int
    owner: str | None
    detected_at: datetime | None
    received_at: datetime
    ack_deadline: datetime | None
    resolve_deadline: datetime | None
    remind_at: datetime | None = None
    overdue_at: datetime | None = None
    suppressed_until: datetime | None = None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    outcome: str | None
    closed_at: datetime | None
    repeat_count: int
    workflow_version: str | None
    policy_version: str | None
    on_call: dict[str, list[str]] | None = None
    flow_run_id: str | None
    source_resolved_at: datetime | None = None
    flow_run_url: str | None = None
    trace: list[TraceEntry] = []


def _seal_on_flush() -> None:
    """Every ORM flush re-seals the alerts it writes (see :mod:`axtrace.ledger.seal`)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session as OrmSession

    from axtrace.ledger import seal

    if not event.contains(OrmSession, "before_flush", seal.before_flush):
        event.listen(OrmSession, "before_flush", seal.before_flush)


_seal_on_flush()
