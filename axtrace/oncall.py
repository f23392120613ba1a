"""Who is on call at a level of the escalation chain: on-call calendars (iCalendar feeds).

A level may name ``oncall_calendar`` (a file path or an ``https://`` URL) instead of its
``responders`` or beside them as the fallback. When an alert reaches the level (assignment,
each escalation) the workflow asks :func:`plan` who is on call now and pins the names on the
alert (``alert.on_call``); only they may act at that level. Two halves, as in the auditor:

- pure: :func:`people` (the person of an event), :func:`on_call_at` (events covering an
  instant, recurring ones and their overrides included, by ``recurring-ical-events``),
  :func:`decide` (the calendar's names, else the responders, else nobody, each with why) and
  :func:`plan` (the first level from a start that has someone; the ones before it skipped);
- I/O: :func:`read_calendar`, a thin reader of files and https URLs, cached for at most
  :data:`CACHE_SECONDS` (a file is read again as soon as it changes). A URL goes through the
  same address guard as notification webhooks (:mod:`axtrace.outbound`): loopback and private
  addresses only with ``AXTRACE_ALLOW_PRIVATE_WEBHOOKS``.

A feed that cannot be read, or has nobody on call, falls back to the level's responders; with
none, the level is skipped. The step that pins the names records which happened and why.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:  # imported where used: a site without calendars does not pay for them
    from icalendar import Calendar, Component

CACHE_SECONDS = 300.0
"""How long a calendar read is used before it is read again (a changed file: at once)."""
MAX_FEED_BYTES = 5 * 1024 * 1024
FETCH_SECONDS = 10.0

Source = Literal["calendar", "responders", "nobody"]
Reader = Callable[[str], "Calendar | str"]
"""Reads a calendar source: the calendar, or why it cannot be read."""


@dataclass(frozen=True)
class Found:
    """Who is on call at one level at one moment, where the names come from, and why."""

    level: int
    names: list[str]
    source: Source
    calendar: str | None = None
    reason: str | None = None

    def detail(self) -> dict[str, Any]:
        """For the trace step: who, from which calendar (a URL without its path) and why."""
        shown = shown_source(self.calendar) if self.calendar else None
        return {"level": self.level, "names": self.names, "source": self.source,
                **({"calendar": shown} if shown else {}),
                **({"reason": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class Plan:
    """Where an alert goes from a start level: the level, who is on call there, and the
    levels skipped on the way (nobody on call and no responders)."""

    level: int
    found: Found
    skipped: list[Found] = field(default_factory=list)

    @property
    def skipped_from(self) -> int:
        """The level the plan started from."""
        return self.skipped[0].level if self.skipped else self.level

    def pinned(self) -> dict[str, list[str]]:
        """What is added to ``alert.on_call``: level (as text) to names."""
        return {str(f.level): f.names for f in (*self.skipped, self.found)}

    @property
    def uses_calendar(self) -> bool:
        return self.found.calendar is not None or bool(self.skipped)

    def detail(self) -> dict[str, Any]:
        """For the trace step (nothing for a level without a calendar, as before)."""
        if not self.uses_calendar:
            return {}
        return {"on_call": self.found.detail(),
                **({"skipped": [f.detail() for f in self.skipped]} if self.skipped else {})}


# --------------------------------------------------------------------------- pure


def is_url(source: str) -> bool:
    return "://" in source


def shown_source(source: str) -> str:
    """A calendar as the trace shows it: a URL's scheme and host only (feed URLs often carry
    a secret token in their path or query), a file path as written."""
    if not is_url(source):
        return source
    parts = urlsplit(source)
    rest = "/..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.hostname}{rest}"


def people(event: Component, pattern: str | None) -> list[str]:
    """The person of an event: each ATTENDEE's ``CN`` (else the local part of its e-mail),
    else its SUMMARY (the group of ``pattern`` when given; no match: no one)."""
    attendees = event.get("ATTENDEE") or []
    names = [_attendee(a) for a in (attendees if isinstance(attendees, list) else [attendees])]
    if any(names):
        return [n for n in names if n]
    summary = str(event.get("SUMMARY") or "").strip()
    if pattern is None:
        return [summary] if summary else []
    match = re.search(pattern, summary)
    name = (match.group(1) or "").strip() if match else ""
    return [name] if name else []


def _attendee(attendee: Any) -> str:
    params = getattr(attendee, "params", {})
    name = str(params.get("CN") or "").strip()
    if name:
        return name
    address = re.sub(r"^mailto:", "", str(attendee).strip(), flags=re.IGNORECASE)
    return address.split("@", 1)[0].strip()


def on_call_at(calendar: Calendar, at: datetime, pattern: str | None = None) -> list[str]:
    """Everyone whose shift covers ``at``, recurring shifts and overrides of single
    occurrences (RECURRENCE-ID) included; cancelled events are no one's shift."""
    import recurring_ical_events

    events = recurring_ical_events.of(calendar).between(at, at + timedelta(seconds=1))
    names: list[str] = []
    for event in events:
        if str(event.get("STATUS") or "").upper() == "CANCELLED":
            continue
        names.extend(n for n in people(event, pattern) if n not in names)
    return names


def decide(number: int, level: Mapping[str, Any], read: Calendar | str | None,
           at: datetime) -> Found:
    """Who is on call at level ``number`` at ``at``, given what reading its calendar gave
    (the calendar, or why it could not be read; None: the level has no calendar)."""
    responders = list(level.get("responders") or [])
    source = level.get("oncall_calendar")
    if source is None:
        return Found(number, responders, "responders")
    if read is not None and not isinstance(read, str):
        names = on_call_at(read, at, level.get("oncall_name_pattern"))
        if names:
            return Found(number, names, "calendar", source)
        why = f"nobody on call at {at.isoformat()}"
    else:
        why = f"calendar not read: {read or 'not asked'}"
    if responders:
        return Found(number, responders, "responders", source,
                     f"{why}; fell back to the level's responders")
    return Found(number, [], "nobody", source, f"{why}; no responders to fall back to")


def plan(pinned: Mapping[str, Any], start: int, at: datetime, read: Reader) -> Plan:
    """The first level from ``start`` on with someone on call, the levels before it skipped;
    when no level has anyone, the last level with nobody (its deadline still runs)."""
    chain = pinned["escalation_chain"]
    skipped: list[Found] = []
    for number in range(start, len(chain) + 1):
        level = chain[number - 1]
        source = level.get("oncall_calendar")
        found = decide(number, level, read(source) if source else None, at)
        if found.names or number == len(chain):
            return Plan(number, found, skipped)
        skipped.append(found)
    raise ValueError(f"level {start} is beyond the chain of {len(chain)} levels")


# --------------------------------------------------------------------------- I/O


_cache: dict[tuple[str, object], tuple[float, Calendar]] = {}
_lock = threading.Lock()


def read_calendar(source: str, *, allow_private: bool,
                  clock: Callable[[], float] = time.monotonic) -> Calendar:
    """The calendar at ``source`` (a file path or an https URL), from the cache when read
    less than :data:`CACHE_SECONDS` ago (a file: and unchanged since). Raises on failure."""
    from icalendar import Calendar

    key = (source, _file_version(source) if not is_url(source) else None)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and clock() - hit[0] < CACHE_SECONDS:
        return hit[1]
    data = _fetch(source, allow_private) if is_url(source) else _read_file(source)
    calendar = Calendar.from_ical(data)
    if not isinstance(calendar, Calendar):
        raise ValueError("not an iCalendar VCALENDAR")
    with _lock:
        _cache[key] = (clock(), calendar)
    return calendar


def reader(*, allow_private: bool) -> Reader:
    """:func:`read_calendar` for :func:`plan`: never raises, says why instead."""

    def read(source: str) -> Calendar | str:
        try:
            return read_calendar(source, allow_private=allow_private)
        except Exception as exc:  # any failure of a feed: the fallback, with why
            return why_unreadable(source, exc)

    return read


def why_unreadable(source: str, exc: Exception) -> str:
    """A reason fit for the trace: a URL's errors by type and status only (their text
    carries the URL, and feed URLs carry secret tokens)."""
    from axtrace.outbound import RefusedTarget

    if isinstance(exc, RefusedTarget) or not is_url(source):
        return f"{type(exc).__name__}: {exc}"[:300]
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")


def _file_version(source: str) -> object:
    try:
        stat = Path(source).expanduser().stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _read_file(source: str) -> bytes:
    path = Path(source).expanduser()
    if path.stat().st_size > MAX_FEED_BYTES:
        raise ValueError(f"{path} is larger than {MAX_FEED_BYTES} bytes")
    return path.read_bytes()


def _fetch(url: str, allow_private: bool) -> bytes:
    """GET an https feed through the webhook address guard, no redirects, bounded size."""
    import httpx

    from axtrace.outbound import pinned_addresses, url_target

    target = url_target("oncall_calendar", url, http_only=True)
    with pinned_addresses(allow_private=allow_private) as pins:
        if target is not None:
            pins.check(target)
        with httpx.stream("GET", url, timeout=FETCH_SECONDS, follow_redirects=False) as got:
            got.raise_for_status()
            return _bounded(got.iter_bytes())


def _bounded(chunks: Any) -> bytes:
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > MAX_FEED_BYTES:
            raise ValueError(f"the feed is larger than {MAX_FEED_BYTES} bytes")
    return bytes(data)
