"""Accepting a delivery: durable before the answer, idempotent, and every rejection recorded.

One transaction holds the delivery, each occurrence it opens (with its ``received`` step and
outbox row), repeat counts, and source resolutions (with an outbox row that wakes the run).
A delivery seen before (same ``webhook-id``, or a byte-identical body within the dedup window)
changes nothing and gets the first answer again. A ``webhook-id`` used before for a different
body is refused (409 naming ``webhook-id``, recorded), never dropped as a repeat: the id is the
sender's idempotency key, and a new alert under an old id must not vanish silently.

A resolve closes only an alert its own source opened (the source is the route, so the
source's own credentials too), and only at its site when it names or maps to one. A resolve
naming no site may close the one open alert of its source with that key; if several sites
have one open, it is refused (409 naming the site field). A resolve that matches nothing
open is kept for a later firing of the same source (and site, and start time, when given)
for :data:`EARLY_RESOLVE_WINDOW`, and answered 2xx, if its source is one whose resolves
arrive before their firing (:data:`~axtrace.intake.registry.RESOLVES_EARLY`); a ``native``
resolve is refused instead (404 naming ``key``), unless it repeats one of an occurrence
already closed. These refusals are decided before anything of the delivery is written
(:func:`resolve_problem`, a pure decision) and recorded like every other.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from axtrace.errors import AxTraceError, Conflict
from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig
from axtrace.intake.registry import RESOLVES_EARLY, parse
from axtrace.intake.sources.pagerduty import routing_key_hash
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import (
    Alert,
    AlertCreate,
    Delivery,
    OutboxItem,
    SourceResolution,
    utcnow,
)
from axtrace.settings import Settings

ALERT = Alert.__table__  # type: ignore[attr-defined]
DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]
RESOLUTION = SourceResolution.__table__  # type: ignore[attr-defined]

# The hot path's statements, built once: SQLAlchemy then finds each compiled form by a cache
# key it computed once, instead of building and keying a new statement per delivery.
_BY_WEBHOOK_ID = select(DELIVERY.c.id, DELIVERY.c.result, DELIVERY.c.body_sha256).where(
    DELIVERY.c.source == bindparam("src"), DELIVERY.c.webhook_id == bindparam("wid"),
    DELIVERY.c.status == "accepted").limit(1)
_BY_BODY = select(DELIVERY.c.id, DELIVERY.c.result).where(
    DELIVERY.c.source == bindparam("src"), DELIVERY.c.body_sha256 == bindparam("digest"),
    DELIVERY.c.status == "accepted", DELIVERY.c.received_at >= bindparam("since"),
).order_by(DELIVERY.c.id.desc()).limit(1)
_NEW_DELIVERY = insert(DELIVERY)
_NEW_DELIVERY_ID = insert(DELIVERY).returning(DELIVERY.c.id)
_OPEN = select(ALERT.c.id, ALERT.c.site, ALERT.c.source_resolved_at)
_OPEN_BY_KEY = _OPEN.where(ALERT.c.open_key == bindparam("open_key")).limit(1)
_OPEN_BY_SOURCE_KEY = _OPEN.where(
    ALERT.c.source == bindparam("src"), ALERT.c.key == bindparam("key"),
    ALERT.c.open_key.is_not(None)).limit(1)
_OPEN_SITES = select(ALERT.c.site).where(
    ALERT.c.source == bindparam("src"), ALERT.c.key == bindparam("key"),
    ALERT.c.open_key.is_not(None)).limit(2)  # two are enough to know it is ambiguous
# counted by the database (SET repeat_count = repeat_count + 1): two replicas or threads
# counting the same alert at once must not lose one
_COUNT_REPEAT = update(ALERT).where(ALERT.c.id == bindparam("alert")).values(
    repeat_count=ALERT.c.repeat_count + 1).returning(ALERT.c.repeat_count)
_EARLY = select(RESOLUTION.c.id, RESOLUTION.c.received_at).where(
    RESOLUTION.c.open_key.in_([bindparam("key"), bindparam("any_site")]),
    RESOLUTION.c.received_at >= bindparam("since"),
).order_by((RESOLUTION.c.open_key == bindparam("key")).desc(), RESOLUTION.c.id.desc()).limit(1)
_EARLY_STARTING = _EARLY.where(RESOLUTION.c.starts_at.is_(None) | (
    RESOLUTION.c.starts_at == bindparam("starts_at")))
_DROP_RESOLUTION = delete(RESOLUTION).where(RESOLUTION.c.id == bindparam("resolution"))

EARLY_RESOLVE_WINDOW = timedelta(hours=1)
"""How long a resolve that came before its firing waits for that firing."""


@dataclass
class Reply:
    """What the HTTP layer answers: a status and a JSON body (and the field a 4xx is about)."""

    status: int
    body: dict[str, Any]
    field: str | None = None
    kind: str = "InvalidInput"


class UnknownSite(ParseError):
    status_code = 404


class NothingOpen(ParseError):
    """A resolve that matches no open alert of its source (and site), from a source whose
    resolves are not kept for a later firing."""

    status_code = 404


class AmbiguousResolve(ParseError):
    """A resolve naming no site, for a key its source has open at several sites."""

    status_code = 409


@dataclass(frozen=True)
class Incoming:
    """One delivery, authenticated and parsed, ready to be written: its envelopes, or the
    ``ParseError`` that will be recorded as its rejection."""

    source: str
    raw: bytes
    webhook_id: str | None
    digest: str
    parsed: list[AlertEnvelope] | ParseError
    dedup_window: float


def prepare(
    *, source: str, raw: bytes, webhook_id: str | None, known_sites: set[str],
    settings: Settings,
) -> Incoming:
    """Parse a delivery (no I/O). A site not in ``known_sites`` parses to ``UnknownSite``:
    the caller may ask for a fresher list and prepare it again."""
    try:
        parsed: list[AlertEnvelope] | ParseError = _envelopes(
            source, raw, known_sites, settings)
    except ParseError as exc:
        parsed = exc
    return Incoming(source=source, raw=raw, webhook_id=webhook_id,
                    digest=hashlib.sha256(raw).hexdigest(), parsed=parsed,
                    dedup_window=settings.dedup_window_seconds)


def write(conn: Connection, incoming: Incoming) -> Reply:
    """Store one prepared delivery in the caller's transaction: the first answer again for a
    delivery seen before, else the delivery and what it says, or its rejection."""
    earlier = _earlier(conn, incoming.source, incoming.webhook_id, incoming.digest,
                       incoming.dedup_window)
    if isinstance(earlier, Conflict):
        return _reject(conn, incoming.source, incoming.raw, incoming.webhook_id,
                       incoming.digest, earlier)
    if earlier is not None:
        return Reply(200, {**earlier, "duplicate_delivery": True})
    if isinstance(incoming.parsed, ParseError):
        return _reject(conn, incoming.source, incoming.raw, incoming.webhook_id,
                       incoming.digest, incoming.parsed)
    problem = _resolve_problems(conn, incoming.source, incoming.parsed)
    if problem is not None:
        return _reject(conn, incoming.source, incoming.raw, incoming.webhook_id,
                       incoming.digest, problem)
    return _store(conn, incoming.source, incoming.raw, incoming.webhook_id, incoming.digest,
                  incoming.parsed)


def commit(engine: Engine, incoming: Incoming) -> Reply:
    """:func:`write` in a transaction of its own, committed before it returns; a racing
    writer that wins (a unique key taken first) makes it try again, up to three times."""
    for attempt in range(3):
        try:
            with _one_writer(engine), engine.begin() as conn:
                return write(conn, incoming)
        except IntegrityError:
            if attempt == 2:
                raise  # a racing writer won three times: let the sender retry (503)
    raise AssertionError("unreachable")


def accept(
    *, source: str, raw: bytes, webhook_id: str | None, known_sites: set[str],
    settings: Settings,
) -> Reply:
    """Store one delivery and what it says, or record why it was rejected."""
    incoming = prepare(source=source, raw=raw, webhook_id=webhook_id,
                       known_sites=known_sites, settings=settings)
    return commit(engine_for(settings.ledger_url, settings.db_busy_timeout), incoming)


_sqlite_writer = threading.Lock()


@contextmanager
def _one_writer(engine: Engine) -> Iterator[None]:
    """On SQLite, one delivery of this process at a time: SQLite has one write lock, and
    threads that wait for it in its busy handler sleep up to 100 ms between tries; a lock
    handed over in the process costs microseconds. Other processes still wait in the busy
    handler (``db_busy_timeout``), and a lock held elsewhere past it is a 503."""
    if engine.dialect.name != "sqlite":
        yield
        return
    with _sqlite_writer:
        yield


def _earlier(
    conn: Connection, source: str, webhook_id: str | None, digest: str, window: float,
) -> dict[str, Any] | Conflict | None:
    """The answer given to the same delivery before (its ``webhook-id``, or a byte-identical
    body within ``window`` seconds), None, or a ``Conflict`` for a ``webhook-id`` that came
    before with another body."""
    if webhook_id:
        found = conn.execute(_BY_WEBHOOK_ID, {"src": source, "wid": webhook_id}).first()
        if found is not None and found.body_sha256 != digest:
            return Conflict(
                f"webhook-id was used by delivery {found.id} for a different body; send a "
                "new alert under a new webhook-id", field="webhook-id")
        if found is not None:
            return _answer(found.id, found.result)
    since = utcnow() - timedelta(seconds=window)
    found = conn.execute(_BY_BODY, {"src": source, "digest": digest, "since": since}).first()
    return _answer(found.id, found.result) if found is not None else None


def _answer(delivery_id: int, result: dict[str, Any]) -> dict[str, Any]:
    """The stored answer of an accepted delivery; its own id is the row's (rows written
    before the id was left out of ``result`` hold it there too, with the same value)."""
    return {**result, "delivery": delivery_id}


def _envelopes(
    source: str, raw: bytes, known_sites: set[str], settings: Settings,
) -> list[AlertEnvelope]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ParseError(f"body is not UTF-8 ({exc.reason} at byte {exc.start})",
                         field="body") from exc
    except RecursionError as exc:
        raise ParseError("body nests too deeply", field="body") from exc
    except ValueError as exc:
        raise ParseError(f"body is not JSON: {exc}", field="body") from exc
    cfg = settings.source(source)
    config = SourceConfig(site_label=cfg.site_label, site_map=cfg.site_map,
                          default_site=cfg.default_site)
    envelopes = parse(source, body, config, max_alerts=settings.max_alerts_per_delivery)
    for index, envelope in enumerate(envelopes):
        if envelope.site is None and envelope.action != "fire":
            continue  # a resolve may name only its key: it is found by source and key
        if envelope.site is None:
            raise ParseError(
                f"no site: give label '{config.site_label}' or configure a default site",
                field=_field(source, index, len(envelopes), "site"))
        if envelope.site not in known_sites:
            raise UnknownSite(
                f"unknown site '{envelope.site}': add it to sites.yaml and run "
                "`axtrace sites apply`", field=_field(source, index, len(envelopes), "site"))
    return envelopes


def _field(source: str, index: int, count: int, name: str) -> str:
    """The field an envelope's ``name`` is reported as: ``alerts.<i>.<name>`` in a delivery
    of several alerts from a third-party source, else ``name``."""
    if source == "native":
        return name
    return f"alerts.{index}.{name}" if count > 1 else name


def resolve_problem(
    *, source: str, site: str | None, open_sites: set[str], closed_before: bool,
    key_field: str, site_field: str,
) -> ParseError | None:
    """Why a resolve from ``source`` (naming ``site``, or None) cannot be taken, given the
    sites where its source has the key open and whether such an occurrence was closed before;
    None when it can (it resolves, repeats a closed one, or is kept for its firing)."""
    if site is None and len(open_sites) > 1:
        return AmbiguousResolve(
            f"this key is open at {len(open_sites)} sites of source {source}; name the site "
            "the resolve is for", field=site_field)
    if open_sites or closed_before or source in RESOLVES_EARLY:
        return None
    where = f" at site '{site}'" if site is not None else ""
    return NothingOpen(
        f"no open alert of source {source} has this key{where}; a resolve closes only an "
        "alert its own source opened (send the firing first)", field=key_field)


def _resolve_problems(
    conn: Connection, source: str, envelopes: list[AlertEnvelope],
) -> ParseError | None:
    """The first resolve of the delivery that cannot be taken (see :func:`resolve_problem`),
    read before anything of it is written; alerts fired earlier in the same delivery count
    as open."""
    for index, envelope in enumerate(envelopes):
        if envelope.action != "resolve" or (
                envelope.site is not None and source in RESOLVES_EARLY):
            continue  # such a resolve is always taken: it resolves, or is kept
        open_sites = {e.site for e in envelopes[:index] if e.action == "fire"
                      and e.key == envelope.key and e.site is not None
                      and envelope.site in (None, e.site)}
        if envelope.site is None:
            found = conn.execute(_OPEN_SITES, {"src": source, "key": envelope.key})
            open_sites |= {row.site for row in found}
        else:
            key = repo.open_key(site=envelope.site, source=source, key=envelope.key)
            if conn.execute(_OPEN_BY_KEY, {"open_key": key}).first() is not None:
                open_sites.add(envelope.site)
        problem = resolve_problem(
            source=source, site=envelope.site, open_sites=open_sites,
            closed_before=not open_sites and _seen_before(conn, envelope),
            key_field=_field(source, index, len(envelopes), "key"),
            site_field=_field(source, index, len(envelopes), "site"))
        if problem is not None:
            return problem
    return None


def stored_body(source: str, raw: bytes) -> str:
    """The raw body as text for the ledger, with PagerDuty's routing key hashed, never clear."""
    text = raw.decode("utf-8", errors="replace")
    if source != "pagerduty":
        return text
    try:
        body = json.loads(text)
    except ValueError:
        return text if "routing_key" not in text else "<unparseable body with a routing_key>"
    if isinstance(body, dict) and isinstance(body.get("routing_key"), str):
        body["routing_key"] = f"sha256:{routing_key_hash(body['routing_key'])}"
    return json.dumps(body, ensure_ascii=True)


def _reject(
    conn: Connection, source: str, raw: bytes, webhook_id: str | None, digest: str,
    exc: AxTraceError,
) -> Reply:
    """Record a rejected delivery; its status is the error's (a body that is not JSON: 400)."""
    status = 400 if exc.field == "body" else exc.status_code
    conn.execute(_NEW_DELIVERY, dict(
        source=source, received_at=utcnow(), webhook_id=None, body_sha256=digest,
        body=stored_body(source, raw), status="rejected", http_status=status,
        reason=exc.message[:2000], field=(exc.field or "")[:300],
        result={"rejected_webhook_id": webhook_id} if webhook_id else {},
    ))
    kind = "InvalidInput" if isinstance(exc, ParseError) else type(exc).__name__
    return Reply(status, {"error": exc.message}, field=exc.field, kind=kind)


def _store(
    conn: Connection, source: str, raw: bytes, webhook_id: str | None, digest: str,
    envelopes: list[AlertEnvelope],
) -> Reply:
    now = utcnow()
    results = [_apply(conn, envelope, now) for envelope in envelopes]
    body: dict[str, Any] = {
        "id": next((r["id"] for r in results if r.get("id")), None),
        "alerts": results,
    }
    delivery_id = conn.execute(_NEW_DELIVERY_ID, dict(
        source=source, received_at=now, webhook_id=webhook_id, body_sha256=digest,
        body=stored_body(source, raw), status="accepted", http_status=202, reason=None,
        field=None, result=body,  # the answer; its own id is the row's, added when read back
    )).scalar_one()
    body["delivery"] = delivery_id
    return Reply(202, body)


ANY_SITE = "*"


def _apply(conn: Connection, envelope: AlertEnvelope, now: datetime) -> dict[str, Any]:
    key = repo.open_key(site=envelope.site or ANY_SITE, source=envelope.source,
                        key=envelope.key)
    if envelope.site is None:
        current = conn.execute(_OPEN_BY_SOURCE_KEY,
                               {"src": envelope.source, "key": envelope.key}).first()
    else:
        current = conn.execute(_OPEN_BY_KEY, {"open_key": key}).first()
    if envelope.action == "fire":
        return _fire(conn, envelope, current, key, now)
    if envelope.action == "resolve":
        return _resolve(conn, envelope, current, key, now)
    return {"id": current.id if current else None, "site": envelope.site, "key": envelope.key,
            "status": "ignored", "reason": "acknowledgements come from responders"}


def _fire(
    conn: Connection, envelope: AlertEnvelope, current: Row[Any] | None, key: str,
    now: datetime,
) -> dict[str, Any]:
    assert envelope.site is not None
    if current is not None:
        count = conn.execute(_COUNT_REPEAT, {"alert": current.id}).scalar_one()
        return {"id": current.id, "site": current.site, "key": envelope.key,
                "status": "repeat", "repeat_count": count}
    early = _early_resolution(conn, key, envelope) if envelope.source in RESOLVES_EARLY \
        else None
    if early is not None:
        conn.execute(_DROP_RESOLUTION, {"resolution": early.id})
    alert_id = repo.insert_alert(
        conn=conn, alert=_create(envelope), actor=f"intake:{envelope.source}", at=now,
        source_resolved_at=early.received_at if early is not None else None)
    return {"id": alert_id, "site": envelope.site, "key": envelope.key, "status": "new"}


def _resolve(
    conn: Connection, envelope: AlertEnvelope, current: Row[Any] | None, key: str,
    now: datetime,
) -> dict[str, Any]:
    base = {"site": envelope.site, "key": envelope.key}
    if current is None:
        # a source that does not resolve early got here only for an occurrence closed before
        if envelope.source not in RESOLVES_EARLY or _seen_before(conn, envelope):
            return {**base, "id": None, "status": "ignored", "reason": "occurrence already closed"}
        conn.execute(insert(RESOLUTION).values(open_key=key, starts_at=envelope.starts_at,
                                               received_at=now))
        return {**base, "id": None, "status": "ignored",
                "reason": "no such occurrence yet (kept in case its firing arrives late)"}
    if current.source_resolved_at is None:
        conn.execute(update(ALERT).where(ALERT.c.id == current.id)
                     .values(source_resolved_at=now))
        conn.execute(insert(OUTBOX).values(alert_id=current.id, topic="wake", created_at=now,
                                           due_at=now))
    return {**base, "id": current.id, "status": "resolving"}


def _seen_before(conn: Connection, envelope: AlertEnvelope) -> bool:
    """Is there a closed occurrence this resolve belongs to?"""
    query = select(ALERT.c.id).where(ALERT.c.source == envelope.source,
                                     ALERT.c.key == envelope.key)
    if envelope.site is not None:
        query = query.where(ALERT.c.site == envelope.site)
    if envelope.starts_at is not None:
        query = query.where(ALERT.c.starts_at == envelope.starts_at)
    return conn.execute(query.limit(1)).first() is not None


def _early_resolution(conn: Connection, key: str, envelope: AlertEnvelope) -> Row[Any] | None:
    """A resolve kept for this firing, from the same source (the source is part of both
    keys): by its site's key first, else by the any-site key of a resolve that named none."""
    params = {"key": key, "since": utcnow() - EARLY_RESOLVE_WINDOW,
              "any_site": repo.open_key(site=ANY_SITE, source=envelope.source, key=envelope.key)}
    if envelope.starts_at is None:
        return conn.execute(_EARLY, params).first()
    return conn.execute(_EARLY_STARTING, {**params, "starts_at": envelope.starts_at}).first()


def _create(envelope: AlertEnvelope) -> AlertCreate:
    """The new occurrence; built without validating again (the envelope holds the same rules:
    the same lengths and ranges, the site a checked slug)."""
    assert envelope.site is not None
    return AlertCreate.model_construct(
        site=envelope.site, key=envelope.key, source=envelope.source,
        severity=envelope.severity, title=envelope.title, detector=envelope.detector,
        detector_version=envelope.detector_version, confidence=envelope.confidence,
        evidence_url=envelope.evidence_url, labels=envelope.labels,
        detected_at=envelope.detected_at, starts_at=envelope.starts_at,
    )
