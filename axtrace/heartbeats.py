"""Detector heartbeats: a dead-man switch for the detectors a site must hear from.

A site's policy lists its ``detectors``, each with ``heartbeat_within``. Heartbeats arrive at
``POST /v1/heartbeats`` and from Alertmanager's always-firing ``Watchdog`` alert; each one is
written to the ledger (table ``heartbeat``) before it is answered. The deadline sweeper checks
every pass (:func:`check_once`): a watched detector silent past its window raises **one**
alert (source ``heartbeat``, title ``detector <name> silent at <site>``) through the intake's
own path (alert, ``received`` step, outbox row: the dispatcher starts its ``respond-to-alert``
run), and the row keeps that alert's id, so neither later passes nor a restart raise it again.
The next heartbeat resolves it at the source, as a source's resolve does.

    silence(watched, now)            pure: is this detector silent, and since when?
    unknown(site, detector, known)   pure: the 404 for a site or detector no policy lists
    beat(conn, ...)                  ledger: a heartbeat, and the resolve of its silence
    raise_silences(conn, ...)        ledger: new rows for newly watched detectors, the alerts
    Detectors                        the watched detectors per site, read from the policy
                                     blocks on Prefect (cached, as the API's site list is)

Silence counts from the last heartbeat, or from when the check first watched the detector.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, bindparam, insert, select, update

from axtrace.errors import InvalidInput, Malformed, NotFound, Unavailable
from axtrace.intake.envelope import AlertEnvelope
from axtrace.ledger.models import Alert, Heartbeat, utcnow
from axtrace.vocabulary import SITE_SLUG

logger = logging.getLogger("axtrace.heartbeats")
SOURCE = "heartbeat"
HEARTBEAT = Heartbeat.__table__  # type: ignore[attr-defined]
ALERT = Alert.__table__  # type: ignore[attr-defined]
Known = Mapping[str, Mapping[str, timedelta]]
"""Site -> detector name -> ``heartbeat_within``."""

# --------------------------------------------------------------------------- pure


@dataclass(frozen=True)
class Watched:
    """One watched detector as the ledger knows it."""

    site: str
    detector: str
    window: timedelta
    heard: datetime
    """Its last heartbeat, or when it was first watched."""
    silent_alert_id: int | None = None


@dataclass(frozen=True)
class Silence:
    """A detector silent past its window, with no alert raised for this silence yet."""

    site: str
    detector: str
    since: datetime
    window: timedelta
    late_by: timedelta


def silence(watched: Watched, now: datetime) -> Silence | None:
    """The silence to raise an alert for, or None: heard within its window, or already
    raised (one alert per silence, however many checks see it)."""
    if watched.silent_alert_id is not None:
        return None
    late_by = now - (watched.heard + watched.window)
    if late_by <= timedelta(0):
        return None
    return Silence(watched.site, watched.detector, watched.heard, watched.window, late_by)


def silence_key(detector: str, since: datetime) -> str:
    """The alert's key: one per detector and silence (the same on every check)."""
    return f"silent:{detector}:{since.isoformat()}"


def envelope(found: Silence) -> AlertEnvelope:
    """The alert a silence raises, as an intake source would give it."""
    return AlertEnvelope(
        source=SOURCE, action="fire", site=found.site,
        key=silence_key(found.detector, found.since),
        title=f"detector {found.detector} silent at {found.site}", detector=found.detector,
        detected_at=found.since + found.window, starts_at=found.since,
        labels={"heartbeat_within": f"{found.window.total_seconds():g}s"},
    )


def unknown(site: str, detector: str, known: Known) -> NotFound | None:
    """Why a heartbeat for ``detector`` at ``site`` is refused (404 naming the field)."""
    if site not in known:
        return NotFound(f"unknown site '{site}': add it to sites.yaml and run "
                        "`axtrace sites apply`", field="site")
    listed = known[site]
    if detector not in listed:
        names = ", ".join(sorted(listed)) or "none"
        return NotFound(f"site '{site}' watches no detector '{detector}' (its detectors: "
                        f"{names}); add it to the site's policy.detectors", field="detector")
    return None


class HeartbeatBody(BaseModel):
    """``POST /v1/heartbeats``."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(max_length=63, pattern=SITE_SLUG, description="The site's slug.")
    detector: str = Field(min_length=1, max_length=200,
                          description="The detector's name, as the site's policy lists it.")


def parse_body(raw: bytes) -> HeartbeatBody:
    """The body, or 400 (not JSON) / 422 naming the field."""
    try:
        return HeartbeatBody.model_validate_json(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == "json_invalid":
            raise Malformed(f"body is not JSON: {error['msg']}", field="body") from None
        if not where:
            raise InvalidInput(f"body must be an object with site and detector: "
                               f"{error['msg']}", field="body") from None
        raise InvalidInput(error["msg"], field=where) from None


# --------------------------------------------------------------------------- ledger

def from_envelope(conn: Connection, found: AlertEnvelope, at: datetime) -> dict[str, Any]:
    """A ``heartbeat`` envelope (a firing ``Watchdog``) beats; a resolved one is ignored."""
    assert found.site is not None
    assert found.detector is not None
    if found.details.get("status") != "fire":
        return {"site": found.site, "detector": found.detector, "status": "ignored",
                "reason": "a resolved Watchdog is no heartbeat"}
    return beat(conn, site=found.site, detector=found.detector, at=at, via=found.source)


_ROW = select(HEARTBEAT).where(HEARTBEAT.c.site == bindparam("site"),
                               HEARTBEAT.c.detector == bindparam("detector"))
_ALERT_KEY = select(ALERT.c.key).where(ALERT.c.id == bindparam("alert"))


def beat(conn: Connection, *, site: str, detector: str, at: datetime,
         via: str) -> dict[str, Any]:
    """Record one heartbeat in the caller's transaction; the alert of the detector's current
    silence, if any, is resolved at the source (the run is woken and closes it)."""
    row = conn.execute(_ROW, {"site": site, "detector": detector}).first()
    if row is None:
        conn.execute(insert(HEARTBEAT).values(
            site=site, detector=detector, watched_since=at, last_seen_at=at, last_via=via,
            beats=1))
        return {"site": site, "detector": detector, "status": "heartbeat", "resolving": None}
    conn.execute(update(HEARTBEAT).where(HEARTBEAT.c.id == row.id).values(
        last_seen_at=at, last_via=via, beats=HEARTBEAT.c.beats + 1, silent_alert_id=None))
    resolving = _resolve(conn, site, row.silent_alert_id, at)
    return {"site": site, "detector": detector, "status": "heartbeat", "resolving": resolving}


def _resolve(conn: Connection, site: str, alert_id: int | None, at: datetime) -> int | None:
    """Resolve the silence's alert as its source would (nothing if it closed already)."""
    from axtrace.intake.service import apply

    key = conn.execute(_ALERT_KEY, {"alert": alert_id}).scalar() if alert_id else None
    if key is None:
        return None
    done = apply(conn, AlertEnvelope(source=SOURCE, action="resolve", site=site, key=key,
                                     title="heartbeat"), at)
    return alert_id if done["status"] == "resolving" else None


class Stale(Exception):
    """A heartbeat came between reading a row and raising its silence: nothing is raised."""


def raise_silences(conn: Connection, known: Known, now: datetime) -> list[int]:
    """Watch every detector in ``known`` (a row for each new one) and raise an alert for
    each silence not raised yet; the ids of the alerts opened."""
    rows = {(r.site, r.detector): r for r in conn.execute(
        select(HEARTBEAT).where(HEARTBEAT.c.site.in_(list(known))))} if known else {}
    raised: list[int] = []
    for site, detectors in known.items():
        for name, window in detectors.items():
            row = rows.get((site, name))
            if row is None:
                conn.execute(insert(HEARTBEAT).values(site=site, detector=name,
                                                       watched_since=now, beats=0))
                continue
            found = silence(Watched(site, name, window, row.last_seen_at or row.watched_since,
                                    row.silent_alert_id), now)
            opened = _raise(conn, row.id, found, now) if found is not None else None
            if opened is not None:
                raised.append(opened)
    return raised


def _raise(conn: Connection, row_id: int, found: Silence, now: datetime) -> int | None:
    from axtrace.intake.service import apply

    done = apply(conn, envelope(found), now)
    heard = (HEARTBEAT.c.last_seen_at.is_(None) & (HEARTBEAT.c.watched_since == found.since)) \
        | (HEARTBEAT.c.last_seen_at == found.since)
    marked = conn.execute(update(HEARTBEAT).where(
        HEARTBEAT.c.id == row_id, HEARTBEAT.c.silent_alert_id.is_(None), heard,
    ).values(silent_alert_id=done["id"]))
    if marked.rowcount != 1:
        raise Stale(f"{found.detector} at {found.site} was heard meanwhile")
    logger.warning("detector %s silent at %s since %s: alert %s", found.detector, found.site,
                   found.since.isoformat(), done["id"])
    return int(done["id"]) if done["status"] == "new" else None  # else open already: a repeat


# --------------------------------------------------------------------------- Prefect

POLICIES_MAX_AGE = 10.0
UNKNOWN_RECHECK = 1.0


class Detectors:
    """The watched detectors per site, from the sites' policy blocks on Prefect: asked again
    when older than 10 s, and (for a heartbeat naming one not known) at most once a second.
    While Prefect is away the last answer stands."""

    def __init__(self) -> None:
        self.known: dict[str, dict[str, timedelta]] | None = None
        self.fetched = 0.0
        self.lock = asyncio.Lock()

    async def get(self, max_age: float = POLICIES_MAX_AGE) -> Known:
        async with self.lock:
            if self.known is not None and time.monotonic() - self.fetched < max_age:
                return self.known
            try:
                self.known = await _from_policies()
                self.fetched = time.monotonic()
            except Exception as exc:
                if self.known is None:
                    raise Unavailable(f"Prefect is unreachable: {exc}", field="site") from exc
                logger.warning("policies not read again (Prefect: %s); using the last", exc)
            return self.known

    async def check(self, site: str, detector: str) -> None:
        """Raise the 404 of :func:`unknown` unless a fresh enough answer lists it."""
        problem = unknown(site, detector, await self.get())
        if problem is not None:
            problem = unknown(site, detector, await self.get(UNKNOWN_RECHECK))
        if problem is not None:
            raise problem


async def _from_policies() -> dict[str, dict[str, timedelta]]:
    from prefect import get_client

    from axtrace.policyhistory import policy_documents

    async with get_client() as client:
        documents = await policy_documents(client)
    return {d.name: _watched(d.name, d.data) for d in documents if d.name}


def _watched(site: str, data: Mapping[str, Any]) -> dict[str, timedelta]:
    from pydantic import TypeAdapter

    from axtrace_blocks import Detector

    try:
        listed = TypeAdapter(list[Detector]).validate_python(data.get("detectors") or [])
    except ValidationError as exc:
        logger.warning("site %s: policy.detectors not valid, none watched: %s", site, exc)
        return {}
    return {d.name: d.heartbeat_within for d in listed}


# --------------------------------------------------------------------------- shells


def record(site: str, detector: str, *, via: str) -> dict[str, Any]:
    """One heartbeat, committed before it returns."""
    from axtrace.ledger.session import in_transaction

    now = utcnow()
    return in_transaction(lambda session: beat(session.connection(), site=site,
                                               detector=detector, at=now, via=via))


def _check(known: Known, now: datetime) -> list[int]:
    from axtrace.ledger.session import in_transaction

    try:
        return in_transaction(lambda session: raise_silences(session.connection(), known, now))
    except Stale as exc:
        logger.info("silence not raised: %s", exc)
        return []


async def check_once(detectors: Detectors) -> int:
    """One pass of the dead-man switch (run by the deadline sweeper); alerts raised."""
    from axtrace.dispatch import nudge

    try:
        known = {site: listed for site, listed in (await detectors.get()).items() if listed}
        raised = await asyncio.to_thread(_check, known, utcnow()) if known else []
    except Exception:  # never in the way of the deadlines swept beside it
        logger.exception("heartbeat check failed; the next pass tries again")
        return 0
    if raised:
        nudge()  # the relay creates their runs (and announces them) now
    return len(raised)
