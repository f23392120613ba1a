"""A site's page for its team: pure assembly of what the shell (:mod:`axtrace.sitepages_api`)
read from Prefect and the ledger.

    GET /v1/sites          each site the caller may see: its policy version, team and the
                           counts of its open alerts
    GET /v1/sites/{site}   the policy a new alert is pinned to now, who is on call now at each
                           level, the open alerts with their level, status and deadlines, and
                           the last policy change on record

The policy is the site's policy block on the Prefect server (what the next alert pins); when
Prefect does not answer, the last policy on record in the ledger (``source: ledger``). Who is
on call at a level is decided by :func:`on_call_now` alone: the level's on-call calendar (read
by the shell beforehand, :func:`axtrace.oncall.read_calendar`), else its ``responders``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from axtrace import oncall, ownership
from axtrace.ledger.models import Alert, Status
from axtrace.reports.model import PolicyChangeSeen

if TYPE_CHECKING:
    from icalendar import Calendar

OPEN_STATUSES = (Status.OPEN.value, Status.ACKNOWLEDGED.value, Status.IGNORED.value)
"""Alerts not yet resolved: on a site's page (a resolved alert closes at once)."""
Source = Literal["prefect", "ledger"]


class OnCall(BaseModel):
    """Who is on call at one level now, and where the names come from."""

    names: list[str] = Field(description="The people on call at this level now.")
    source: str = Field(default="responders",
                        description="Where the names come from: `calendar` (the level's "
                                    "on-call calendar), `responders` (the level's list in the "
                                    "policy) or `nobody`.")
    calendar: str | None = Field(default=None, description="The level's on-call calendar "
                                                           "(a URL: its host only).")
    detail: str | None = Field(default=None, description="Why, when the source needs saying.")


class LevelNow(BaseModel):
    """One level of the escalation chain as it stands now."""

    level: int = Field(description="1-based position in the chain.")
    name: str
    on_call: OnCall
    acknowledge_within_s: float
    remind_every_s: float | None = None


class PolicyNow(BaseModel):
    """The policy a new alert of the site is pinned to now."""

    version: str = Field(description="Content hash, as pinned on alerts (`policy_version`).")
    source: Source = Field(description="`prefect`: the site's policy block on the Prefect "
                                       "server; `ledger`: the last policy on record (Prefect "
                                       "did not answer).")
    on_record: bool = Field(description="This version is the last in the site's policy "
                                        "history (false: edited outside `sites apply` and not "
                                        "yet put on record by the auditor).")
    owning_team: str
    resolve_within_s: float
    levels: list[LevelNow]


class OpenAlert(BaseModel):
    """An alert of the site not yet resolved, with its level and deadlines."""

    id: int
    title: str
    severity: str
    status: str
    level: int = Field(description="Current escalation level, 1-based; 0 = not assigned yet.")
    level_name: str | None = Field(default=None, description="From the alert's pinned policy.")
    may_act: list[str] = Field(default_factory=list,
                               description="Who may acknowledge or resolve it now (its pinned "
                                           "chain, up to its level).")
    received_at: datetime
    ack_deadline: datetime | None = None
    resolve_deadline: datetime | None = None
    remind_at: datetime | None = None
    overdue_at: datetime | None = None
    acknowledged_by: str | None = None
    policy_version: str | None = Field(default=None, description="The policy pinned on it.")


class OpenCounts(BaseModel):
    """A site's alerts not yet resolved, by status; ``overdue``: of those, past the last
    level's resolve deadline."""

    total: int = 0
    open: int = 0
    acknowledged: int = 0
    ignored: int = 0
    overdue: int = 0


class SiteSummary(BaseModel):
    """One site in the list."""

    site: str
    policy_version: str | None = Field(description="What a new alert is pinned to (none: no "
                                                   "policy found).")
    owning_team: str | None = None
    open_alerts: OpenCounts


class SitePage(BaseModel):
    """Everything a site lead needs to see about their site now."""

    site: str
    as_of: datetime
    policy: PolicyNow | None = Field(description="None: no policy block and none on record.")
    open_alerts: list[OpenAlert] = Field(description="Oldest first.")
    counts: OpenCounts
    last_policy_change: PolicyChangeSeen | None = None


Calendars = Mapping[str, "Calendar | str"]
"""Each on-call calendar of a policy as the shell read it: the calendar, or why not."""


def on_call_now(pinned: Mapping[str, Any], level: int, now: datetime,
                calendars: Calendars | None = None) -> OnCall:
    """Who is on call at ``level`` at ``now``: whoever the level's calendar (as read in
    ``calendars``) has on shift, else the level's responders (with why), else nobody."""
    step = pinned["escalation_chain"][level - 1]
    source = step.get("oncall_calendar")
    found = oncall.decide(level, step, (calendars or {}).get(source) if source else None, now)
    return OnCall(names=found.names, source=found.source, detail=found.reason,
                  calendar=oncall.shown_source(source) if source else None)


def policy_now(pinned: dict[str, Any], *, source: Source, last: PolicyChangeSeen | None,
               now: datetime, calendars: Calendars | None = None) -> PolicyNow:
    policy = ownership.parse(pinned)
    version = ownership.version(pinned)
    levels = [
        LevelNow(level=i, name=ownership.level_name(pinned, i),
                 on_call=on_call_now(pinned, i, now, calendars),
                 acknowledge_within_s=step.acknowledge_within.total_seconds(),
                 remind_every_s=step.remind_every.total_seconds() if step.remind_every else None)
        for i, step in enumerate(policy.escalation_chain, start=1)
    ]
    return PolicyNow(version=version, source=source, levels=levels,
                     on_record=last is not None and last.new_version == version,
                     owning_team=policy.owning_team,
                     resolve_within_s=policy.resolve_within.total_seconds())


def open_alert(alert: Alert) -> OpenAlert:
    pinned, level = alert.policy, alert.level
    known = pinned is not None and 1 <= level <= ownership.levels(pinned)
    return OpenAlert.model_validate({
        **alert.model_dump(include=set(OpenAlert.model_fields) - {"level_name", "may_act"}),
        "level_name": ownership.level_name(pinned, level) if pinned and known else None,
        "may_act": ownership.responders(pinned, level, alert.on_call) if pinned and known else [],
    })


def counts_of(groups: Iterable[tuple[str, bool, int]]) -> OpenCounts:
    """Counts from ``(status, overdue, how many)`` groups of alerts not yet resolved."""
    counts = OpenCounts()
    for status, overdue, n in groups:
        counts.total += n
        setattr(counts, status, getattr(counts, status) + n)
        counts.overdue += n if overdue else 0
    return counts


def site_page(site: str, *, pinned: tuple[dict[str, Any], Source] | None,
              last: PolicyChangeSeen | None, alerts: Sequence[Alert], now: datetime,
              calendars: Calendars | None = None) -> SitePage:
    """The page of one site from its policy (and where it came from), its last policy change
    on record, its alerts not yet resolved and its on-call calendars as read."""
    policy = policy_now(pinned[0], source=pinned[1], last=last, now=now,
                        calendars=calendars) if pinned else None
    return SitePage(
        site=site, as_of=now, policy=policy, last_policy_change=last,
        open_alerts=[open_alert(a) for a in alerts],
        counts=counts_of((a.status, a.overdue_at is not None, 1) for a in alerts))


def summary(site: str, pinned: dict[str, Any] | None, counts: OpenCounts) -> SiteSummary:
    return SiteSummary(site=site, open_alerts=counts,
                       policy_version=ownership.version(pinned) if pinned else None,
                       owning_team=pinned.get("owning_team") if pinned else None)
