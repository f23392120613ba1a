"""Maintenance windows of a site: times when its alerts are recorded but no one is paged.

A window is either fixed (``start`` and ``end``) or recurring (an RFC 5545 ``rrule`` with a
``duration``, counted from ``dtstart``). Pure data with validation; which window holds an
alert back, and until when, is decided in :mod:`axtrace.maintenance`. Recurrences are
python-dateutil's (installed with Prefect), imported only when a rule is checked.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from axtrace.vocabulary import shorthand_duration

if TYPE_CHECKING:
    from dateutil.rrule import rrule, rruleset

DEFAULT_DTSTART = datetime(2000, 1, 1, tzinfo=UTC)
"""Where a recurring window without ``dtstart`` counts from: midnight UTC, so the rule's
unset minutes and seconds are 0 and its times are UTC (a fixed offset: no daylight saving)."""
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
"""How often a window may recur at most: finer rules would be walked from ``dtstart`` on
every alert (and are not maintenance windows)."""
_FREQ = re.compile(r"FREQ=([A-Z]+)")


def _duration(value: Any) -> Any:
    if isinstance(value, str) and (parsed := shorthand_duration(value)) is not None:
        return parsed
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def parse_rule(text: str, dtstart: datetime | None) -> rrule | rruleset:
    """The recurrence ``text`` describes, counted from ``dtstart`` (default
    :data:`DEFAULT_DTSTART`); ValueError naming what is wrong."""
    from dateutil.rrule import rrulestr

    frequency = _FREQ.search(text.upper())
    if frequency is None:
        raise ValueError(f"rrule {text!r} has no FREQ=; e.g. 'FREQ=WEEKLY;BYDAY=SU;BYHOUR=2'")
    if frequency[1] not in FREQUENCIES:
        raise ValueError(f"rrule FREQ={frequency[1]} recurs too often for a maintenance "
                         f"window; use one of {', '.join(FREQUENCIES)}")
    try:
        parsed: rrule | rruleset = rrulestr(text, dtstart=dtstart or DEFAULT_DTSTART)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"rrule {text!r} is not valid RFC 5545: {exc}") from exc
    return parsed


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

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() <= 0:
            raise ValueError(f"duration must be longer than zero, got {value.total_seconds():g}s")
        return value

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
