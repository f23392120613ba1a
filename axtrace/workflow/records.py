"""What the workflow's layers hand each other: a recorded step, a person's answer, the fields
of an alert raised by hand. Plain data; no I/O and no rules here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from axtrace.ledger.models import Alert, Step


@dataclass(frozen=True)
class StepRecord:
    """One step a transaction wrote to an alert's trace, emitted as an event once committed."""

    alert: Alert
    step: Step
    actor: str
    detail: dict[str, Any]


class ManualAlert(BaseModel):
    """Fields of an alert raised by hand from the Prefect UI's Run form."""

    title: str = "Alert raised by hand"
    severity: str = "high"
    detector: str | None = None
    evidence_url: str | None = None


class Answer(BaseModel):
    """What a person (or the sweeper, with no responder) gave a waiting run."""

    responder: str | None = None
    note: str = ""
    outcome: str | None = None
    answered_at: datetime | None = None
