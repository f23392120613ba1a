"""The words every part of AxTrace shares, defined once: site slugs, severities, durations.

Importable without Prefect (the reports and the intake use it, and so does the policy block,
which Prefect imports on every block lookup).
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

SITE_SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""A site's name everywhere: block, deployment, tag, ledger (lowercase, digits, dashes)."""
SITE_SLUG_RE = re.compile(SITE_SLUG, re.ASCII)


class Severity(StrEnum):
    """How bad an alert is; overrides of deadlines are keyed by it."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SHORTHAND = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
DURATION_HINT = "30s, 15m, 12h, 7d or 2w"


def shorthand_duration(text: str) -> timedelta | None:
    """``30s``, ``15m``, ``12h``, ``7d``, ``2w`` (decimals allowed) as a timedelta; None when
    ``text`` is not written that way (the caller may accept other forms, or refuse)."""
    match = _SHORTHAND.match(text)
    if match is None:
        return None
    return timedelta(seconds=float(match[1]) * DURATION_UNITS[match[2]])
