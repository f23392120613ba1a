"""The shapes of a report: what was asked (``Scope``) and what was found (``Report``).

Pydantic models, so that the JSON of the CLI, the HTTP API and the Prefect artifacts is one
shape. Rates carry their numerator and denominator beside the percentage, so that every
percentage can be checked by hand; durations are in seconds.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Better = Literal["higher", "lower"]


class Scope(BaseModel):
    """The period and filters of one report. Alerts count when ``since <= received_at < until``."""

    since: datetime
    until: datetime
    sites: list[str] = Field(default_factory=list, description="Only these sites; empty = all.")
    severity: str | None = None
    detector: str | None = Field(default=None, description="Detector name, or name@version.")


class Rate(BaseModel):
    """``count`` of ``of`` alerts, and the percentage (None when nothing was due)."""

    count: int = 0
    of: int = 0
    pct: float | None = None


class Durations(BaseModel):
    """A distribution of durations in seconds (None when there are none)."""

    n: int = 0
    min_s: float | None = None
    q1_s: float | None = None
    median_s: float | None = None
    q3_s: float | None = None
    p90_s: float | None = None
    max_s: float | None = None


class Counts(BaseModel):
    """Alerts raised in the period, and where they stand now."""

    raised: int = 0
    acknowledged: int = 0
    resolved: int = 0
    open: int = Field(default=0, description="Raised and not yet resolved.")


class DeadlineFigures(BaseModel):
    """What deadlines did to the alerts of the period: escalations by the deadline that passed
    (steps), reminders sent (steps), alerts marked overdue, and alerts suppressed and released
    by maintenance windows."""

    escalated_for_acknowledge: int = Field(
        default=0, description="Escalations because an acknowledge deadline passed.")
    escalated_for_resolve: int = Field(
        default=0, description="Escalations because a resolve deadline passed.")
    reminded: int = Field(default=0, description="Reminders sent to a level (reminded steps).")
    overdue: int = Field(
        default=0, description="Alerts whose last level's resolve deadline passed.")
    suppressed: int = Field(
        default=0, description="Alerts received in a maintenance window (suppressed steps).")
    released: int = Field(
        default=0,
        description="Suppressed alerts still open when their window ended (released steps).")


class DetectorFigures(BaseModel):
    """One detector (model name and version) at one site."""

    detector: str | None
    version: str | None
    counts: Counts
    false_positive: Rate = Field(description="Resolved as false_positive, of resolved alerts.")


class VersionSeen(BaseModel):
    """A workflow or policy version that alerts of a site ran under."""

    version: str | None
    alerts: int
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class FieldChange(BaseModel):
    """One field of a policy, before and after a change (``kind``: added, removed, changed)."""

    field: str
    kind: str
    before: str | None = None
    after: str | None = None


class PolicyChangeSeen(BaseModel):
    """One change of a site's ownership policy on record (:mod:`axtrace.policyhistory`)."""

    seq: int = Field(description="Position in the chain of all sites' changes, from 1.")
    site: str
    at: datetime
    origin: str = Field(description="sites apply, or prefect-ui (an edit elsewhere, detected).")
    actor: str = Field(description="The OS user of sites apply, else unknown.")
    where: str | None = Field(default=None, description="The sites file applied.")
    old_version: str | None = None
    new_version: str
    changes: list[FieldChange] = Field(default_factory=list)


class SiteFigures(BaseModel):
    """Every figure of one site (or of all sites together, with ``site = "(all)"``)."""

    site: str
    counts: Counts = Field(default_factory=Counts)
    by_severity: dict[str, Counts] = Field(default_factory=dict)
    by_detector: list[DetectorFigures] = Field(default_factory=list)
    time_to_acknowledge: Durations = Field(default_factory=Durations)
    time_to_resolve: Durations = Field(default_factory=Durations)
    ack_compliance: Rate = Field(default_factory=Rate)
    resolve_compliance: Rate = Field(default_factory=Rate)
    escalation_rate: Rate = Field(default_factory=Rate)
    ignored_rate: Rate = Field(default_factory=Rate)
    step_adherence: Rate = Field(default_factory=Rate)
    false_positive_rate: Rate = Field(default_factory=Rate)
    deadlines: DeadlineFigures = Field(default_factory=DeadlineFigures)
    outcomes: dict[str, int] = Field(default_factory=dict)
    workflow_versions: list[VersionSeen] = Field(default_factory=list)
    policy_versions: list[VersionSeen] = Field(default_factory=list)
    ran_old_workflow: int = Field(default=0, description="Alerts not on the newest workflow.")
    policy_changes: list[PolicyChangeSeen] = Field(
        default_factory=list,
        description="Changes of the site's policy in the period, oldest first: they may "
                    "explain its figures (none for all sites together).")


class WeekFigures(BaseModel):
    """Alerts raised in one ISO week (Monday, UTC) and their acknowledge compliance."""

    week_start: date
    raised: int
    ack_compliance: Rate


class Spread(BaseModel):
    """How far sites are apart on one figure."""

    figure: str
    label: str
    better: Better
    unit: Literal["%", "s"] = Field(description="Percent (rates) or seconds (durations).")
    sites: int = Field(description="Sites that report this figure.")
    best_site: str | None = None
    best: float | None = None
    worst_site: str | None = None
    worst: float | None = None
    ratio: float | None = Field(default=None, description="Largest / smallest value.")
    cv: float | None = Field(default=None, description="Coefficient of variation.")
    consistency: float | None = Field(default=None, description="0-1, see the score.")


class Flag(BaseModel):
    """A site that stands apart from all others on one figure, in words."""

    site: str
    figure: str
    value: float
    message: str


class Consistency(BaseModel):
    """Spread per figure, outlier flags, and the overall score (0-100, None = no comparison)."""

    score: float | None = None
    figures: list[Spread] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)


class Report(BaseModel):
    """The managers' view of one period."""

    generated_at: datetime
    scope: Scope
    newest_workflow_version: str | None = None
    sites: list[SiteFigures] = Field(default_factory=list)
    all_sites: SiteFigures = Field(default_factory=lambda: SiteFigures(site="(all)"))
    sites_on_old_workflow: list[str] = Field(default_factory=list)
    weekly: list[WeekFigures] = Field(default_factory=list)
    consistency: Consistency = Field(default_factory=Consistency)
