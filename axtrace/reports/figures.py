"""Per-site and cross-site figures of one period, from the ledger.

Alerts belong to a period by when they were received (``since <= received_at < until``); what
happened to them afterwards counts as of ``now`` (the time the report is made). Definitions:

- **raised / acknowledged / resolved / open**: alerts received in the period; of those, how many
  have been acknowledged, resolved (resolved or closed), and how many are not resolved yet.
- **time to acknowledge / resolve**: ``acknowledged_at - received_at`` and
  ``resolved_at - received_at`` of the alerts that got there; median, nearest-rank p90, max
  (see :mod:`axtrace.reports.stats`).
- **acknowledge-deadline compliance**: of the alerts whose first acknowledge deadline is settled
  (acknowledged at any level, escalated, ignored, or still open with the deadline passed), the
  share acknowledged *at level 1, never escalated, and not late*: the ``acknowledged`` step of
  the trace has ``late_by_s`` null or 0. Alerts still within their first deadline do not count.
- **resolve-deadline compliance**: of the alerts whose first resolve deadline is settled
  (resolved, the deadline has passed, or it was escalated for it), the share resolved by it:
  at or before ``resolve_deadline`` and never escalated because a resolve deadline passed
  (an escalation gives the next level a new deadline; the alert still missed its first).
- **escalation rate**: share of raised alerts that reached level 2 or beyond (escalated for
  either deadline).
- **deadlines**: escalations (steps) by the deadline that passed, acknowledge or resolve;
  reminders sent (``reminded`` steps); alerts marked ``overdue`` (the last level's resolve
  deadline passed); alerts received in a maintenance window (``suppressed`` steps) and those
  still open when it ended (``released`` steps).
- **ignored rate**: share of raised alerts that no one acknowledged at any level (marked
  ``ignored``; they may have been resolved later, still unacknowledged).
- **step adherence**: share of closed alerts whose trace, ``refused`` steps set aside, reads
  ``received, assigned, notified, (escalated, notified)*, acknowledged | ignored, resolved,
  closed`` exactly (no step missing, repeated or out of order); ``suppressed, released`` may
  come before ``notified`` (a maintenance window), and ``received, assigned, suppressed,
  resolved, closed`` (resolved at the source in the window) adheres too; after ``acknowledged``,
  ``reminded`` steps, ``escalated, notified`` pairs for the resolve deadline and one
  ``overdue`` may come, in that order of events (see :data:`ADHERENT`).
- **outcomes**: resolved alerts per outcome (the reason code chosen at resolution);
  **false-positive rate**: ``false_positive`` outcomes of resolved alerts, per site and per
  detector (name and version), the AI team's feedback.
- **policy changes**: each change of a site's policy made in the period (``since <= at <
  until``, from :mod:`axtrace.policyhistory`), listed with the site's figures it may explain;
  a site with changes and no alerts is listed too. Severity and detector filters do not apply.
- **versions**: alerts per workflow and policy version at each site; the newest workflow
  version is the one of the code on disk when the caller gives it, else the version seen
  first most recently in the ledger. A site *ran an old workflow* when any of its alerts in the
  period ran under another version.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from axtrace.ledger.models import Outcome
from axtrace.reports import query
from axtrace.reports.consistency import consistency
from axtrace.reports.model import (
    Counts,
    DeadlineFigures,
    DetectorFigures,
    Durations,
    PolicyChangeSeen,
    Report,
    Scope,
    SiteFigures,
    VersionSeen,
    WeekFigures,
)
from axtrace.reports.stats import SECONDS_DECIMALS, rate, summarize

ALL_SITES = "(all)"
TALLIES = ("raised", "acknowledged", "resolved", "open", "closed", "escalated", "ignored",
           "overdue", "ack_due", "resolve_due", "resolve_on_time")
MAX_WEEKS = 260
"""The weekly trend shows at most the last five years of a period."""
_EPOCH_MONDAY = date(1969, 12, 29)
_NEVER = datetime.min.replace(tzinfo=UTC)
ADHERENT = re.compile(
    r"received,assigned,(suppressed,resolved|(suppressed,released,)?notified(,escalated,notified)*,"
    r"(ignored|acknowledged(,reminded)*(,escalated,notified(,reminded)*)*(,overdue(,reminded)*)?)"
    r",resolved),closed")
"""The required steps in the required order, ``refused`` steps set aside: a maintenance window
may hold the chain back (``suppressed, released``) before it starts, or the source resolve the
alert while it is held (``suppressed, resolved``); after an acknowledgement, reminders,
escalations for the resolve deadline and at most one ``overdue``."""
_TOKEN = re.compile(r"(\d+)(\D.*)")


class Tally(Counter[str]):
    """Running sums of the per-group counts of one site, week or severity."""

    def add(self, row: Any, names: Iterable[str] = TALLIES) -> None:
        for name in names:
            self[name] += int(getattr(row, name) or 0)

    def counts(self) -> Counts:
        return Counts(raised=self["raised"], acknowledged=self["acknowledged"],
                      resolved=self["resolved"], open=self["open"])


def week_start(week: int) -> date:
    """The Monday that starts week number ``week`` (see :class:`query.week_number`)."""
    return _EPOCH_MONDAY + timedelta(weeks=week)


def week_of(moment: datetime) -> int:
    return (moment.astimezone(UTC).date() - _EPOCH_MONDAY).days // 7


@dataclass
class Found:
    """The rows of one report, or of one site of it, and the summaries of its durations."""

    main: list[Any] = field(default_factory=list)
    dims: list[Any] = field(default_factory=list)
    on_time: list[Any] = field(default_factory=list)
    paths: list[Any] = field(default_factory=list)
    deadline_steps: list[Any] = field(default_factory=list)
    tta: Durations = field(default_factory=Durations)
    ttr: Durations = field(default_factory=Durations)


ROWS = ("main", "dims", "on_time", "paths", "deadline_steps")


def fetch(conn: Connection, scope: Scope, now: datetime) -> tuple[Found, dict[str, Found]]:
    """Run every query of the report once: all rows, and the same rows per site."""
    where = query.Where(scope, wide=query.is_wide(conn, scope))
    found = Found(
        main=list(query.by_site_week_severity(conn, where, now)),
        dims=list(query.by_dimension(conn, where)),
        on_time=list(query.acks_on_time(conn, where)),
        paths=list(query.closed_paths(conn, where)),
        deadline_steps=list(query.deadline_steps(conn, where)),
    )
    per_site: dict[str, Found] = defaultdict(Found)
    for name in ROWS:
        for row in getattr(found, name):
            getattr(per_site[row.site], name).append(row)
    if query.percentiles_in_sql(conn):
        stats_from_sql(found, per_site, query.duration_stats(conn, where))
    else:
        stats_in_python(found, per_site, query.durations(conn, where))
    return found, per_site


def stats_in_python(found: Found, per_site: dict[str, Found], rows: Iterable[Any]) -> None:
    """Summaries of the seconds to acknowledge and to resolve, per site and for all sites."""
    tta: dict[str, list[float]] = defaultdict(list)
    ttr: dict[str, list[float]] = defaultdict(list)
    for site, to_ack, to_resolve in rows:
        if to_ack is not None:
            tta[site].append(to_ack)
        if to_resolve is not None:
            ttr[site].append(to_resolve)
    for times, attr in ((tta, "tta"), (ttr, "ttr")):
        for values in times.values():
            values.sort()
        for site, values in times.items():
            setattr(per_site[site], attr, summarize(values))
        # Timsort merges the sites' already sorted runs in about linear time.
        setattr(found, attr, summarize(sorted(chain.from_iterable(times.values()))))


def stats_from_sql(found: Found, per_site: dict[str, Found], rows: Iterable[Any]) -> None:
    """The same summaries, computed by the database (site None: all sites)."""
    for row in rows:
        target = found if row.site is None else per_site[row.site]
        target.tta, target.ttr = _durations(row, "tta"), _durations(row, "ttr")


def _durations(row: Any, name: str) -> Durations:
    def get(stat: str) -> float | None:
        value = getattr(row, f"{name}_{stat}")
        return None if value is None else round(float(value), SECONDS_DECIMALS)

    return Durations(n=int(getattr(row, f"{name}_n")), min_s=get("min"), q1_s=get("q1"),
                     median_s=get("median"), q3_s=get("q3"), p90_s=get("p90"),
                     max_s=get("max"))


def build_report(
    *, session: Session | Connection, scope: Scope, now: datetime,
    known_sites: Iterable[str] = (), newest_workflow_version: str | None = None,
) -> Report:
    """Every figure of ``scope`` as of ``now``; ``known_sites`` appear even with no alerts."""
    conn = session.connection() if isinstance(session, Session) else session
    found, per_site = fetch(conn, scope, now)
    changes = policy_changes_by_site(query.policy_changes(conn, scope))
    newest = newest_workflow_version or latest_first_seen(found.dims)
    names = sorted(set(per_site) | set(changes)
                   | {s for s in known_sites if not scope.sites or s in scope.sites})
    sites = [site_figures(site, per_site.get(site, Found()), newest).model_copy(
        update={"policy_changes": changes.get(site, [])}) for site in names]
    report = Report(
        generated_at=now, scope=scope, newest_workflow_version=newest, sites=sites,
        all_sites=site_figures(ALL_SITES, found, newest),
        sites_on_old_workflow=[s.site for s in sites if s.ran_old_workflow],
        weekly=weekly(found, scope),
    )
    report.consistency = consistency(sites)
    return report


def policy_changes_by_site(rows: Iterable[Any]) -> dict[str, list[PolicyChangeSeen]]:
    """Each site's policy changes, oldest first."""
    found: dict[str, list[PolicyChangeSeen]] = defaultdict(list)
    for row in rows:
        found[row.site].append(PolicyChangeSeen.model_validate(dict(row._mapping)))
    return dict(found)


def site_figures(site: str, found: Found, newest: str | None) -> SiteFigures:
    """Every figure of one site from its rows (or of all sites, from all rows)."""
    tally = Tally()
    for row in found.main:
        tally.add(row)
    outcomes = outcome_counts(found.dims)
    workflows, policies = versions_seen(found.dims)
    return SiteFigures(
        site=site, counts=tally.counts(), by_severity=by_severity(found.main),
        by_detector=detectors(found.dims),
        time_to_acknowledge=found.tta,
        time_to_resolve=found.ttr,
        ack_compliance=rate(sum(int(r.on_time) for r in found.on_time), tally["ack_due"]),
        resolve_compliance=rate(tally["resolve_on_time"], tally["resolve_due"]),
        escalation_rate=rate(tally["escalated"], tally["raised"]),
        ignored_rate=rate(tally["ignored"], tally["raised"]),
        step_adherence=rate(adherent_count(found.paths), tally["closed"]),
        false_positive_rate=rate(outcomes.get(Outcome.FALSE_POSITIVE.value, 0),
                                 sum(outcomes.values())),
        deadlines=deadline_figures(found.deadline_steps, tally["overdue"]),
        outcomes=outcomes, workflow_versions=workflows, policy_versions=policies,
        ran_old_workflow=sum(v.alerts for v in workflows if v.version not in (None, newest)),
    )


def deadline_figures(rows: Sequence[Any], overdue: int) -> DeadlineFigures:
    """Escalations by reason, reminders, suppressed and released alerts (summed over sites for
    all sites), and overdue."""
    tally = Tally()
    for row in rows:
        tally.add(row, ("escalated_ack", "escalated_resolve", "reminded", "suppressed",
                        "released"))
    return DeadlineFigures(escalated_for_acknowledge=tally["escalated_ack"],
                           escalated_for_resolve=tally["escalated_resolve"],
                           reminded=tally["reminded"], overdue=overdue,
                           suppressed=tally["suppressed"], released=tally["released"])


def steps_of(path: str) -> tuple[str, ...]:
    """The steps of a ``1received,2assigned,...`` path (see ``query.step_path``) in seq order."""
    tokens = (_TOKEN.fullmatch(token) for token in path.split(","))
    pairs = sorted((int(t[1]), t[2]) for t in tokens if t)
    return tuple(step for _, step in pairs)


@lru_cache(maxsize=4096)
def follows_procedure(path: str) -> bool:
    """Does this closed alert's path (refusals already set aside) adhere? See the docstring."""
    return ADHERENT.fullmatch(",".join(steps_of(path))) is not None


def adherent_count(paths: Sequence[Any]) -> int:
    """Closed alerts whose path follows the procedure."""
    return sum(int(row.n) for row in paths if row.path and follows_procedure(row.path))


def by_severity(main: Sequence[Any]) -> dict[str, Counts]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    for row in main:
        tallies[row.severity].add(row, ("raised", "acknowledged", "resolved", "open"))
    return {sev: tallies[sev].counts() for sev in sorted(tallies)}


def detectors(dims: Sequence[Any]) -> list[DetectorFigures]:
    """Per detector and version (summed over sites for the all-sites figures)."""
    tallies: dict[tuple[str | None, str | None], Tally] = defaultdict(Tally)
    for row in dims:
        tally = tallies[(row.detector, row.detector_version)]
        tally.add(row, ("raised", "acknowledged", "resolved", "open"))
        tally["with_outcome"] += int(row.raised) if row.outcome else 0
        tally["false_positive"] += (
            int(row.raised) if row.outcome == Outcome.FALSE_POSITIVE.value else 0)
    return [
        DetectorFigures(detector=name, version=version, counts=t.counts(),
                        false_positive=rate(t["false_positive"], t["with_outcome"]))
        for (name, version), t in sorted(tallies.items(), key=lambda kv: _key(kv[0]))
    ]


def _key(pair: tuple[str | None, str | None]) -> tuple[str, str]:
    return (pair[0] or "", pair[1] or "")


def outcome_counts(dims: Sequence[Any]) -> dict[str, int]:
    """Resolved alerts per outcome."""
    counts: Counter[str] = Counter()
    for row in dims:
        if row.outcome:
            counts[row.outcome] += int(row.raised)
    return dict(sorted(counts.items()))


def versions_seen(found: Sequence[Any]) -> tuple[list[VersionSeen], list[VersionSeen]]:
    """Workflow and policy versions with their alert counts and first and last sightings."""
    return _fold(found, "workflow_version"), _fold(found, "policy_version")


def _fold(found: Sequence[Any], column: str) -> list[VersionSeen]:
    alerts: Counter[str | None] = Counter()
    first: dict[str | None, datetime] = {}
    last: dict[str | None, datetime] = {}
    for row in found:
        version = getattr(row, column)
        alerts[version] += int(row.raised)
        first[version] = min(first.get(version, row.first_seen), row.first_seen)
        last[version] = max(last.get(version, row.last_seen), row.last_seen)
    return sorted(
        (VersionSeen(version=v, alerts=n, first_seen=first[v], last_seen=last[v])
         for v, n in alerts.items()),
        key=lambda v: (v.first_seen or _NEVER, v.version or ""))


def latest_first_seen(found: Sequence[Any]) -> str | None:
    """The workflow version whose first alert came last: the newest the ledger knows."""
    firsts = {v.version: v.first_seen or _NEVER
              for v in _fold(found, "workflow_version") if v.version}
    return max(firsts, key=lambda v: (firsts[v], v)) if firsts else None


def weekly(found: Found, scope: Scope) -> list[WeekFigures]:
    """Every ISO week the period touches (its last ``MAX_WEEKS`` at most), zero weeks kept so
    the trend has no gaps."""
    raised: Counter[int] = Counter()
    due: Counter[int] = Counter()
    for row in found.main:
        raised[row.week] += int(row.raised)
        due[row.week] += int(row.ack_due)
    on_time: Counter[int] = Counter()
    for row in found.on_time:
        on_time[row.week] += int(row.on_time)
    last = week_of(scope.until - timedelta(microseconds=1))
    first = max(week_of(scope.since), last - MAX_WEEKS + 1)
    return [
        WeekFigures(week_start=week_start(w), raised=raised[w],
                    ack_compliance=rate(on_time[w], due[w]))
        for w in range(first, last + 1)
    ]
