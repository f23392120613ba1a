"""The one duration type of a policy (acknowledge and resolve windows, reminders, heartbeat
windows, maintenance windows): the house syntax (``30s``, ``15m``, ``2h``, ``1d``, ``1w``) or
pydantic's (seconds, ISO 8601), and longer than zero, refused naming its field."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationInfo

from axtrace.vocabulary import shorthand_duration


def _parse_duration(value: Any) -> Any:
    """Accept ``30s``, ``15m``, ``2h``, ``1d``, ``1w`` besides what pydantic takes (seconds,
    ISO 8601)."""
    if isinstance(value, str) and (parsed := shorthand_duration(value)) is not None:
        return parsed
    return value


def _positive(value: timedelta, info: ValidationInfo) -> timedelta:
    """A deadline or window of no time would fire at once: refused, naming its field."""
    if value.total_seconds() <= 0:
        raise ValueError(
            f"{info.field_name} must be longer than zero, got {value.total_seconds():g}s")
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_positive)]
"""Every duration of a policy: in the house syntax or pydantic's, and longer than zero."""
