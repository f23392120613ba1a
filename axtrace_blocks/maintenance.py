"""Maintenance windows of a site: times when its alerts are recorded but no one is paged.

A window is either fixed (``start`` and ``end``) or recurring (an RFC 5545 ``rrule`` with a
``duration``, counted from ``dtstart``). Pure data with validation; which window holds an
alert back, and until when, is decided in :mod:`axtrace.maintenance`. Recurrences are
python-dateutil's (installed with Prefect), imported only when a rule is checked.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from axtrace_blocks.durations import Duration

if TYPE_CHECKING:
    from dateutil.rrule import rrule

DEFAULT_DTSTART = datetime(2000, 1, 1, tzinfo=UTC)
"""Where a recurring window without ``dtstart`` counts from: midnight UTC, so the rule's
unset minutes and seconds are 0 and its times are UTC (a fixed offset: no daylight saving)."""
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
"""How often a window may recur at most: finer rules would be walked from ``dtstart`` on
every alert (and are not maintenance windows)."""
_FREQ = re.compile(r"FREQ=([A-Z]+)")
_INTERVAL = re.compile(r"INTERVAL=([^;\s]*)")
PROBE = timedelta(days=4 * 366)
"""A rule must occur at least once this soon after its ``dtstart`` (leap days do)."""




def parse_rule(text: str, dtstart: datetime | None) -> rrule:
    """The recurrence ``text`` describes, counted from ``dtstart`` (default
    :data:`DEFAULT_DTSTART`); ValueError naming what is wrong. Rules that would make
    dateutil search without end are refused: an ``INTERVAL`` below 1, and a rule with no
    occurrence in the :data:`PROBE` after ``dtstart`` (e.g. February 30th; dateutil walks
    to the year 9999 to find that out, which takes seconds for a daily rule, once, when the
    window is checked)."""
    from dateutil.rrule import rrule, rrulestr

    _check_frequency(text)
    start = dtstart or DEFAULT_DTSTART
    try:
        parsed = rrulestr(text, dtstart=start)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"rrule {text!r} is not valid RFC 5545: {exc}") from exc
    if not isinstance(parsed, rrule):
        raise ValueError(f"rrule {text!r} must be one RRULE, without EXDATE or RDATE")
    if parsed.replace(count=None, until=start + PROBE).after(start, inc=True) is None:
        raise ValueError(f"rrule {text!r} has no occurrence in the {PROBE.days} days from "
                         f"{start.isoformat()}")
    return parsed


def _check_frequency(text: str) -> None:
    upper = text.upper()
    frequencies = _FREQ.findall(upper)
    if len(frequencies) != 1:
        raise ValueError(f"rrule {text!r} needs exactly one FREQ=; e.g. "
                         "'FREQ=WEEKLY;BYDAY=SU;BYHOUR=2'")
    if frequencies[0] not in FREQUENCIES:
        raise ValueError(f"rrule FREQ={frequencies[0]} recurs too often for a maintenance "
                         f"window; use one of {', '.join(FREQUENCIES)}")
    for interval in _INTERVAL.findall(upper):  # dateutil would loop for ever on 0
        if not (interval.isdigit() and int(interval) >= 1):
            raise ValueError(f"rrule INTERVAL={interval} must be a whole number of at least 1")


class MaintenanceWindow(BaseModel):
    """A time when the site's alerts are recorded and assigned but no one is paged: once
    (``start`` and ``end``) or recurring (``rrule`` and ``duration``)."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime | None = Field(
        default=None,
        description="When a one-off window starts, ISO 8601 with a time zone.",
    )
    end: AwareDatetime | None = Field(
        default=None,
        description="When a one-off window ends (after its start), ISO 8601 with a time zone.",
    )
    rrule: str | None = Field(
        default=None,
        description=(
            "When a recurring window starts, as an RFC 5545 rule recurring daily at most, "
            "e.g. 'FREQ=WEEKLY;BYDAY=SU;BYHOUR=2'."
        ),
    )
    duration: Duration | None = Field(
        default=None, description="How long each recurring window lasts, e.g. '2h'.",
    )
    dtstart: AwareDatetime | None = Field(
        default=None,
        description=(
            "Where the rule counts from, ISO 8601 with a time zone; empty: "
            "2000-01-01T00:00:00Z (times in UTC)."
        ),
    )
    reason: str = Field(default="", description="Why the window exists, shown in the trace.")

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if end is not None and start is not None and end <= start:
            raise ValueError(f"the window ends ({end.isoformat()}) before it starts "
                             f"({start.isoformat()})")
        return end

    @field_validator("rrule")
    @classmethod
    def _parses(cls, text: str | None) -> str | None:
        if text is not None:
            parse_rule(text, None)
        return text

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        fixed = self.start is not None or self.end is not None
        recurring = any(v is not None for v in (self.rrule, self.duration, self.dtstart))
        if fixed and recurring:
            raise ValueError("a window is either start/end or rrule/duration, not both")
        if not fixed and not recurring:
            raise ValueError("a window needs start and end, or rrule and duration")
        wanted = ("start", "end") if fixed else ("rrule", "duration")
        missing = [name for name in wanted if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{' and '.join(missing)} missing: a window needs "
                             f"{' and '.join(wanted)}")
        if self.rrule is not None and self.dtstart is not None:
            parse_rule(self.rrule, self.dtstart)  # e.g. a naive UNTIL with a zoned dtstart
        return self
