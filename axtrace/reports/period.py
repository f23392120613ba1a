"""Reading the period and filters people type (``--since 7d``) into a :class:`Scope`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time

from axtrace.errors import InvalidInput
from axtrace.reports.model import Scope
from axtrace.vocabulary import DURATION_HINT, SEVERITIES, SITE_SLUG_RE, shorthand_duration

_DETECTOR = re.compile(r"^[^@\x00-\x1f\x7f]{1,200}(@[^@\x00-\x1f\x7f]{1,100})?$")
"""The ledger's limits: detector up to 200 characters, detector_version up to 100."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""No alert is older: an earlier ``since`` starts here."""


def parse_instant(text: str, *, anchor: datetime, field: str) -> datetime:
    """A duration (``30s`` ... ``2w``) before ``anchor``, an ISO date (midnight UTC) or
    datetime (UTC unless it says otherwise)."""
    try:
        return _instant(text.strip(), anchor)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"{field}: expected {DURATION_HINT}, an ISO date or datetime; got {text[:40]!r}",
            field=field,
        ) from exc


def _instant(text: str, anchor: datetime) -> datetime:
    if (ago := shorthand_duration(text)) is not None:
        return anchor - ago
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def make_scope(
    *, since: str = "7d", until: str | None = None, sites: Iterable[str] = (),
    severity: str | None = None, detector: str | None = None, now: datetime,
) -> Scope:
    """The scope of a report; a relative ``since`` counts back from ``until`` (default now)."""
    end = parse_instant(until, anchor=now, field="until") if until else now
    start = max(parse_instant(since, anchor=end, field="since"), EARLIEST)
    if start >= end:
        raise InvalidInput(f"since ({start:%Y-%m-%d %H:%M}) must be before until "
                           f"({end:%Y-%m-%d %H:%M})", field="since")
    chosen = sorted(set(sites))
    for site in chosen:
        if not SITE_SLUG_RE.match(site):
            raise InvalidInput(f"site: not a site slug: {site!r}", field="site")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput(f"severity: one of {', '.join(SEVERITIES)}; got {severity!r}",
                           field="severity")
    if detector is not None and not _DETECTOR.match(detector):
        raise InvalidInput("detector: a detector name, or name@version, of printable "
                           f"characters; got {detector[:40]!r}", field="detector")
    return Scope(since=start, until=end, sites=chosen, severity=severity, detector=detector)
