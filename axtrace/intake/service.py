"""Accepting a delivery: durable before the answer, idempotent, and every rejection recorded.

One transaction holds the delivery, each occurrence it opens (with its ``received`` step and
outbox row), repeat counts, and source resolutions (with an outbox row that wakes the run).
A delivery seen before (same ``webhook-id``, or a byte-identical body within the dedup window)
changes nothing and gets the first answer again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig
from axtrace.intake.registry import parse
from axtrace.intake.sources.pagerduty import routing_key_hash
from axtrace.ledger import repo
from axtrace.ledger.models import (
    Alert,
    AlertCreate,
    Delivery,
    OutboxItem,
    SourceResolution,
    utcnow,
)
from axtrace.ledger.session import ledger_session
from axtrace.settings import Settings

EARLY_RESOLVE_WINDOW = timedelta(hours=1)
"""How long a resolve that came before its firing waits for that firing."""


@dataclass
class Reply:
    """What the HTTP layer answers: a status, a JSON body, and the alerts to emit events for."""

    status: int
    body: dict[str, Any]
    created: list[Alert] = field(default_factory=list)
    field: str | None = None


class UnknownSite(ParseError):
    status_code = 404


def accept(
    *, source: str, raw: bytes, webhook_id: str | None, known_sites: set[str],
    settings: Settings,
) -> Reply:
    """Store one delivery and what it says, or record why it was rejected."""
    digest = hashlib.sha256(raw).hexdigest()
    for attempt in range(3):
        earlier = _earlier(source, webhook_id, digest, settings.dedup_window_seconds)
        if earlier is not None:
            return Reply(200, {**earlier.result, "duplicate_delivery": True})
        try:
            envelopes = _envelopes(source, raw, known_sites, settings)
        except ParseError as exc:
            return _reject(source, raw, webhook_id, digest, exc)
        try:
            return _store(source, raw, webhook_id, digest, envelopes)
        except IntegrityError:
            if attempt == 2:
                raise  # a racing writer won three times: let the sender retry (503)
    raise AssertionError("unreachable")


def _earlier(source: str, webhook_id: str | None, digest: str, window: float) -> Delivery | None:
    since = utcnow() - timedelta(seconds=window)
    with ledger_session() as session:
        if webhook_id:
            found = session.exec(select(Delivery).where(
                Delivery.source == source, Delivery.webhook_id == webhook_id)).first()
            if found is not None and found.status == "accepted":
                return found
        return session.exec(select(Delivery).where(
            Delivery.source == source, Delivery.body_sha256 == digest,
            Delivery.status == "accepted", col(Delivery.received_at) >= since,
        ).order_by(col(Delivery.id).desc()).limit(1)).first()


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
    envelopes = parse(source, body, config)
    for index, envelope in enumerate(envelopes):
        if envelope.site is None and envelope.action != "fire":
            continue  # a resolve may name only its key: it is found by source and key
        if envelope.site is None:
            raise ParseError(
                f"no site: give label '{config.site_label}' or configure a default site",
                field=_site_field(source, index, len(envelopes)))
        if envelope.site not in known_sites:
            raise UnknownSite(
                f"unknown site '{envelope.site}': add it to sites.yaml and run "
                "`axtrace sites apply`", field=_site_field(source, index, len(envelopes)))
    return envelopes


def _site_field(source: str, index: int, count: int) -> str:
    if source == "native":
        return "site"
    return f"alerts.{index}.site" if count > 1 else "site"


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
    source: str, raw: bytes, webhook_id: str | None, digest: str, exc: ParseError,
) -> Reply:
    status = 404 if isinstance(exc, UnknownSite) else (400 if exc.field == "body" else 422)
    with ledger_session() as session:
        session.add(Delivery(
            source=source, received_at=utcnow(), webhook_id=None, body_sha256=digest,
            body=stored_body(source, raw), status="rejected", http_status=status,
            reason=exc.message[:2000], field=(exc.field or "")[:300],
            result={"rejected_webhook_id": webhook_id} if webhook_id else {},
        ))
        session.commit()
    return Reply(status, {"error": exc.message}, field=exc.field)


def _store(
    source: str, raw: bytes, webhook_id: str | None, digest: str,
    envelopes: list[AlertEnvelope],
) -> Reply:
    now = utcnow()
    with ledger_session() as session:
        results = [_apply(session, envelope, now) for envelope in envelopes]
        body: dict[str, Any] = {
            "id": next((r["id"] for r in results if r.get("id")), None),
            "alerts": [{k: v for k, v in r.items() if k != "alert"} for r in results],
        }
        delivery = Delivery(
            source=source, received_at=now, webhook_id=webhook_id, body_sha256=digest,
            body=stored_body(source, raw), status="accepted", http_status=202,
            result=body,
        )
        session.add(delivery)
        session.flush()
        body["delivery"] = delivery.id
        delivery.result = dict(body)
        session.add(delivery)
        session.commit()
    created = [r["alert"] for r in results if r["status"] == "new"]
    return Reply(202, body, created=created)


ANY_SITE = "*"


def _apply(session: Session, envelope: AlertEnvelope, now: datetime) -> dict[str, Any]:
    key = repo.open_key(site=envelope.site or ANY_SITE, source=envelope.source,
                        key=envelope.key)
    if envelope.site is None:
        current = session.exec(select(Alert).where(
            Alert.source == envelope.source, Alert.key == envelope.key,
            col(Alert.open_key).is_not(None))).first()
    else:
        current = session.exec(select(Alert).where(Alert.open_key == key)).first()
    if envelope.action == "fire":
        return _fire(session, envelope, current, key, now)
    if envelope.action == "resolve":
        return _resolve(session, envelope, current, key, now)
    return {"id": current.id if current else None, "site": envelope.site, "key": envelope.key,
            "status": "ignored", "reason": "acknowledgements come from responders"}


def _fire(
    session: Session, envelope: AlertEnvelope, current: Alert | None, key: str, now: datetime,
) -> dict[str, Any]:
    assert envelope.site is not None
    if current is not None:
        # counted by the database (SET repeat_count = repeat_count + 1): two replicas or
        # threads counting the same alert at once must not lose one
        current.repeat_count = Alert.repeat_count + 1
        session.add(current)
        session.flush()
        session.refresh(current, ["repeat_count"])
        return {"id": current.id, "site": current.site, "key": envelope.key,
                "status": "repeat", "repeat_count": current.repeat_count}
    early = _early_resolution(session, key, envelope.starts_at) or _early_resolution(
        session, repo.open_key(site=ANY_SITE, source=envelope.source, key=envelope.key),
        envelope.starts_at)
    alert = repo.create_alert(session=session, actor=f"intake:{envelope.source}", at=now,
                              alert=_create(envelope))
    if early is not None:
        alert.source_resolved_at = early.received_at
        session.delete(early)
        session.add(alert)
    return {"id": alert.id, "site": alert.site, "key": envelope.key, "status": "new",
            "alert": alert}


def _resolve(
    session: Session, envelope: AlertEnvelope, current: Alert | None, key: str, now: datetime,
) -> dict[str, Any]:
    base = {"site": envelope.site, "key": envelope.key}
    if current is None:
        if _seen_before(session, envelope):
            return {**base, "id": None, "status": "ignored", "reason": "occurrence already closed"}
        session.add(SourceResolution(open_key=key, starts_at=envelope.starts_at, received_at=now))
        return {**base, "id": None, "status": "ignored",
                "reason": "no such occurrence yet (kept in case its firing arrives late)"}
    if current.source_resolved_at is None:
        current.source_resolved_at = now
        session.add(current)
        session.add(OutboxItem(alert_id=current.id or 0, topic="wake", created_at=now,
                               due_at=now))
    return {**base, "id": current.id, "status": "resolving"}


def _seen_before(session: Session, envelope: AlertEnvelope) -> bool:
    """Is there a closed occurrence this resolve belongs to?"""
    query = select(Alert.id).where(Alert.source == envelope.source, Alert.key == envelope.key)
    if envelope.site is not None:
        query = query.where(Alert.site == envelope.site)
    if envelope.starts_at is not None:
        query = query.where(Alert.starts_at == envelope.starts_at)
    return session.exec(query.limit(1)).first() is not None


def _early_resolution(
    session: Session, key: str, starts_at: datetime | None,
) -> SourceResolution | None:
    since = utcnow() - EARLY_RESOLVE_WINDOW
    query = select(SourceResolution).where(
        SourceResolution.open_key == key, col(SourceResolution.received_at) >= since)
    if starts_at is not None:
        query = query.where(col(SourceResolution.starts_at).is_(None) | (
            SourceResolution.starts_at == starts_at))
    return session.exec(query.order_by(col(SourceResolution.id).desc()).limit(1)).first()


def _create(envelope: AlertEnvelope) -> AlertCreate:
    assert envelope.site is not None
    return AlertCreate(
        site=envelope.site, key=envelope.key, source=envelope.source,
        severity=envelope.severity, title=envelope.title, detector=envelope.detector,
        detector_version=envelope.detector_version, confidence=envelope.confidence,
        evidence_url=envelope.evidence_url, labels=envelope.labels,
        detected_at=envelope.detected_at, starts_at=envelope.starts_at,
    )
