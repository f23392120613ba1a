"""What every source parser returns: source-neutral alert envelopes, or one ``ParseError``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from axtrace.errors import InvalidInput
from axtrace.vocabulary import Severity

Action = Literal["fire", "resolve", "acknowledge", "heartbeat"]
"""``heartbeat``: a detector is alive (Alertmanager's ``Watchdog``); it opens no alert."""


class ParseError(InvalidInput):
    """The one error a parser raises: the body cannot be used. ``field`` names where, as a
    dotted path into the body (``alerts.0.labels.site``); the message says why."""


class TooDeep(ParseError):
    """A body that nests deeper than every source allows (400, naming where)."""

    status_code = 400


class TooMany(ParseError):
    """A delivery with more alerts than one delivery may carry (413, naming ``alerts``)."""

    status_code = 413


class SourceConfig(BaseModel):
    """How one source's alerts are routed to sites (from settings; defaults work for most)."""

    model_config = ConfigDict(extra="forbid")

    site_label: str = Field(default="site", description="Label or detail key naming the site.")
    site_map: dict[str, str] = Field(
        default_factory=dict,
        description="Source-specific key (e.g. PagerDuty routing_key) -> site slug.",
    )
    default_site: str | None = Field(default=None, description="Site when nothing names one.")


class AlertEnvelope(BaseModel):
    """One alert as a source told it, normalised. ``key`` + ``starts_at`` identify the
    occurrence at the source; ``action`` says whether it fires, resolves or is acknowledged."""

    model_config = ConfigDict(extra="forbid")

    source: str
    action: Action = "fire"
    site: str | None = None
    key: str = Field(min_length=1, max_length=255)
    severity: Severity = Severity.HIGH
    title: str = Field(min_length=1, max_length=500)
    detector: str | None = Field(default=None, max_length=200)
    detector_version: str | None = Field(default=None, max_length=100)
    confidence: float | None = Field(default=None, ge=0, le=1)
    evidence_url: str | None = Field(default=None, max_length=2000)
    labels: dict[str, str] = Field(default_factory=dict)
    detected_at: datetime | None = None
    starts_at: datetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)
