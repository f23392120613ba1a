"""Maintenance windows: which window holds an alert back, and until when (pure).

An alert received in a window of its site's pinned policy is recorded and assigned, then
``suppressed``: no one is paged and no deadline runs. Its run waits until the window ends
(the sweeper wakes it then, :func:`axtrace.workflow.wake_at`), and an alert still open is
``released``: the normal chain starts with fresh deadlines. Windows that overlap or touch
hold an alert until the last of them ends. Times are compared as aware datetimes; recurring
windows repeat in the fixed offset of their ``dtstart`` (UTC by default), so daylight saving
never moves them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from axtrace_blocks.maintenance import MaintenanceWindow, parse_rule

MAX_CHAINED = 100
"""Windows that touch one another are followed this far at most (a window every day that
lasts a day would otherwise never end)."""


@dataclass(frozen=True)
class Hold:
    """Why and until when an alert is suppressed: the window it was received in."""

    window: int
    """Index of the window in the policy's ``maintenance`` list."""
    start: datetime
    until: datetime
    reason: str

    def detail(self) -> dict[str, Any]:
        """What the ``suppressed`` step records."""
        return {"window": self.window, "reason": self.reason, "window_start": self.start,
                "until": self.until}


def occurrence(window: MaintenanceWindow, at: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence of ``window`` that ``at`` falls in, as ``[start, end)``, or None."""
    if window.start is not None and window.end is not None:
        return (window.start, window.end) if window.start <= at < window.end else None
    if window.rrule is None or window.duration is None:
        return None
    began = parse_rule(window.rrule, window.dtstart).before(at, inc=True)
    if began is None or at >= began + window.duration:
        return None  # the latest start is the one that ends last: none earlier covers ``at``
    return began, began + window.duration


def covering(windows: Sequence[MaintenanceWindow], at: datetime) -> Hold | None:
    """The window ``at`` falls in that ends last (the first listed on a tie), or None."""
    best: Hold | None = None
    for index, window in enumerate(windows):
        span = occurrence(window, at)
        if span is not None and (best is None or span[1] > best.until):
            best = Hold(index, span[0], span[1], window.reason)
    return best


def hold(windows: Sequence[MaintenanceWindow], received: datetime, now: datetime) -> Hold | None:
    """Whether an alert received at ``received`` is suppressed, looked at ``now``: the window
    it was received in, extended through windows that overlap or touch it; None when it was
    received in none, or when they all ended by ``now`` (nothing is left to hold back)."""
    first = covering(windows, received)
    if first is None:
        return None
    until = first.until
    for _ in range(MAX_CHAINED):
        later = covering(windows, until)
        if later is None:
            break
        until = later.until
    if until <= now:
        return None
    return Hold(first.window, first.start, until, first.reason)
