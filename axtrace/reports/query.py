"""The SQL of the report: six aggregate queries over the ledger, for SQLite and PostgreSQL.

Every query selects the alerts of the scope (``since <= received_at < until`` and the filters)
and groups in the database; only aggregate rows come back to Python. Percentiles: PostgreSQL
computes them (ordered-set aggregates, :func:`duration_stats`); SQLite has none, so one row
per acknowledged or resolved alert comes back (:func:`durations`) and Python computes them.

Dialect differences are compiled per dialect below: seconds since 1970 of a timestamp, the
ISO week a timestamp falls in, and the ordered list of an alert's steps.

Planning on SQLite: the received_at and (site, received_at) indexes serve a period that is a
small part of the ledger; for a period that holds most of it, walking an index and looking up
every row costs several times a plain table scan, and SQLite's planner (without histograms)
still picks the index. :func:`is_wide` measures the share of alerts the period holds (a count
over the index) and, above ``WIDE_SHARE``, the queries disqualify the indexes with SQLite's
documented unary ``+`` (https://sqlite.org/optoverview.html#disqualifying_where_clause_terms_
using_unary_). PostgreSQL's planner decides by itself and gets plain columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    Select,
    String,
    Table,
    and_,
    case,
    func,
    not_,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import SQLModel

from axtrace.ledger.models import RESOLVE_DEADLINE_PASSED, Status, Step
from axtrace.reports.model import Scope

Rows = Sequence[Any]
"""Result rows, read by column label (``row.site``)."""
ALERT: Table = SQLModel.metadata.tables["alert"]
TRACE: Table = SQLModel.metadata.tables["trace_event"]
POLICY_CHANGE: Table = SQLModel.metadata.tables["policy_change"]
A = ALERT.c
T = TRACE.c

# --------------------------------------------------------------------------- dialect helpers


class epoch_seconds(FunctionElement[float]):
    """Seconds since 1970-01-01 UTC of a ledger timestamp, as a float."""

    type = Float()
    name = "epoch_seconds"
    inherit_cache = True


class week_number(FunctionElement[int]):
    """Whole weeks since Monday 1969-12-29 (UTC) of a timestamp: the ISO week it falls in."""

    type = Integer()
    name = "week_number"
    inherit_cache = True


def _arg(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses
    return str(compiler.process(arg, **kw))


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"((julianday({_arg(element, compiler, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgres(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {_arg(element, compiler, **kw)}) AS DOUBLE PRECISION)"


@compiles(week_number, "sqlite")
def _week_sqlite(element: week_number, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST((julianday({_arg(element, compiler, **kw)}) - 2440584.5) / 7 AS INTEGER)"


@compiles(week_number, "postgresql")
def _week_postgres(element: week_number, compiler: SQLCompiler, **kw: Any) -> str:
    arg = _arg(element, compiler, **kw)
    return f"CAST(FLOOR((EXTRACT(EPOCH FROM {arg}) / 86400 + 3) / 7) AS INTEGER)"


class scan_hint(FunctionElement[Any]):
    """A column the SQLite planner must not use an index for (``+column``); plain elsewhere."""

    name = "scan_hint"
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(scan_hint)
def _scan_plain(element: scan_hint, compiler: SQLCompiler, **kw: Any) -> str:
    return _arg(element, compiler, **kw)


@compiles(scan_hint, "sqlite")
def _scan_sqlite(element: scan_hint, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{_arg(element, compiler, **kw)}"


class step_path(FunctionElement[str]):
    """An aggregate: the alert's steps as ``<seq><step>`` tokens joined by commas.

    PostgreSQL concatenates in seq order (``string_agg ... ORDER BY seq``); SQLite before
    3.44 cannot be told an order, so every token carries its seq and
    :func:`axtrace.reports.figures.steps_of` sorts them: correctness never depends on the
    order the database concatenated in.
    """

    type = String()
    name = "step_path"
    inherit_cache = True


@compiles(step_path, "sqlite")
def _path_sqlite(element: step_path, compiler: SQLCompiler, **kw: Any) -> str:
    seq, step = (compiler.process(c, **kw) for c in element.clauses)
    return f"group_concat({seq} || {step}, ',')"


@compiles(step_path, "postgresql")
def _path_postgres(element: step_path, compiler: SQLCompiler, **kw: Any) -> str:
    seq, step = (compiler.process(c, **kw) for c in element.clauses)
    return f"string_agg(CAST({seq} AS TEXT) || {step}, ',' ORDER BY {seq})"


def seconds_between(start: Any, end: Any) -> ColumnElement[float]:
    """``end - start`` in seconds."""
    return epoch_seconds(end) - epoch_seconds(start)


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows of the group meet ``condition`` (a group has rows: never NULL)."""
    return func.sum(case((condition, 1), else_=0))


# --------------------------------------------------------------------------- definitions

WIDE_SHARE = 0.2


def is_wide(conn: Connection, scope: Scope) -> bool:
    """On SQLite: do the period and sites hold at least ``WIDE_SHARE`` of all alerts? Both
    counts are answered from an index (received_at, or site and received_at)."""
    if conn.dialect.name != "sqlite":
        return False
    total = conn.execute(select(func.count()).select_from(ALERT)).scalar_one()
    held = select(func.count()).select_from(ALERT).where(
        A.received_at >= scope.since, A.received_at < scope.until)
    if scope.sites:
        held = held.where(A.site.in_(scope.sites))
    return bool(total) and conn.execute(held).scalar_one() >= WIDE_SHARE * total


class Where:
    """The alerts a report covers: received in the period, matching the filters."""

    def __init__(self, scope: Scope, *, wide: bool = False) -> None:
        self.scope = scope
        self.wide = wide

    def col(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``column`` as the plan wants it: index-disqualified on a wide SQLite scan."""
        return scan_hint(column) if self.wide else column

    def terms(self) -> list[ColumnElement[bool]]:
        scope, received = self.scope, self.col(A.received_at)
        where = [received >= scope.since, received < scope.until]
        if scope.sites:
            where.append(self.col(A.site).in_(scope.sites))
        if scope.severity:
            where.append(A.severity == scope.severity)
        if scope.detector:
            name, _, version = scope.detector.partition("@")
            where.append(A.detector == name)
            if version:
                where.append(A.detector_version == version)
        return where


def ignored() -> ColumnElement[bool]:
    """No one acknowledged at any level: marked ignored, or resolved without acknowledgement
    (the workflow only lets an alert be resolved unacknowledged after it was marked ignored,
    or by its source) once someone was notified (not one resolved at its source while a
    maintenance window held it back: no one was asked)."""
    return and_(A.acknowledged_at.is_(None),
                or_(A.status == Status.IGNORED.value, asked_and_resolved()))


def asked_and_resolved() -> ColumnElement[bool]:
    """Resolved after someone was notified of it."""
    return and_(A.resolved_at.is_not(None), A.notified_level >= 1)


def ack_due(as_of: datetime) -> ColumnElement[bool]:
    """The first acknowledge deadline is settled: acknowledged, escalated, ignored (marked, or
    resolved unacknowledged), or still open past it. (``ignored()`` folded in, for speed.)"""
    return or_(A.acknowledged_at.is_not(None), A.level >= 2,
               A.status == Status.IGNORED.value, asked_and_resolved(),
               and_(A.status == Status.OPEN.value, A.ack_deadline < as_of))


def escalated_for_resolve() -> ColumnElement[bool]:
    """The alert was escalated because its resolve deadline passed: it missed the deadline it
    got on receipt, whatever deadline the level that took over got. Only alerts at level 2 or
    beyond are looked up in the trace (through the alert_id index)."""
    reason = T.detail["reason"].as_string() == RESOLVE_DEADLINE_PASSED
    step = select(T.id).where(T.alert_id == A.id, T.step == Step.ESCALATED.value, reason)
    return and_(A.level >= 2, step.exists())


def resolve_due(as_of: datetime) -> ColumnElement[bool]:
    """The first resolve deadline is settled: resolved, the deadline has passed, or it passed
    and the alert was escalated for it (the next level's deadline may still be ahead)."""
    return and_(A.resolve_deadline.is_not(None),
                or_(A.resolved_at.is_not(None), A.resolve_deadline < as_of,
                    escalated_for_resolve()))


def resolved_on_time() -> ColumnElement[bool]:
    """Resolved by the resolve deadline the alert got on receipt (never escalated for it)."""
    return and_(A.resolved_at.is_not(None), A.resolved_at <= A.resolve_deadline,
                not_(escalated_for_resolve()))


def counts_columns() -> list[ColumnElement[Any]]:
    return [
        func.count().label("raised"),
        count_if(A.acknowledged_at.is_not(None)).label("acknowledged"),
        count_if(A.resolved_at.is_not(None)).label("resolved"),
        count_if(A.resolved_at.is_(None)).label("open"),
    ]


# --------------------------------------------------------------------------- queries


def by_site_week_severity(conn: Connection, where: Where, as_of: datetime) -> Rows:
    """Counts, escalations, ignored, closed and deadline tallies per site, week and severity."""
    week = week_number(A.received_at).label("week")
    query = (
        select(A.site, week, A.severity, *counts_columns(),
               count_if(A.status == Status.CLOSED.value).label("closed"),
               count_if(A.level >= 2).label("escalated"),
               count_if(ignored()).label("ignored"),
               count_if(A.overdue_at.is_not(None)).label("overdue"),
               count_if(ack_due(as_of)).label("ack_due"),
               count_if(resolve_due(as_of)).label("resolve_due"),
               count_if(resolved_on_time()).label("resolve_on_time"))
        .where(*where.terms()).group_by(where.col(A.site), week, A.severity)
    )
    return conn.execute(query).all()


def by_dimension(conn: Connection, where: Where) -> Rows:
    """Counts per site, detector (name, version), outcome, workflow and policy version, with
    the first and last alert of each group: detectors, outcomes and versions fold from it."""
    dims = (A.detector, A.detector_version, A.outcome, A.workflow_version, A.policy_version)
    query = (
        select(A.site, *dims, *counts_columns(),
               func.min(A.received_at).label("first_seen"),
               func.max(A.received_at).label("last_seen"))
        .where(*where.terms()).group_by(where.col(A.site), *dims)
    )
    return conn.execute(query).all()


def _times(where: Where) -> Select[Any]:
    return (
        select(A.site, seconds_between(A.received_at, A.acknowledged_at).label("tta"),
               seconds_between(A.received_at, A.resolved_at).label("ttr"))
        .where(or_(A.acknowledged_at.is_not(None), A.resolved_at.is_not(None)),
               *where.terms())
    )


def durations(conn: Connection, where: Where) -> Rows:
    """One row per acknowledged or resolved alert: site, seconds to acknowledge, to resolve."""
    return conn.execute(_times(where)).all()


def percentiles_in_sql(conn: Connection) -> bool:
    """PostgreSQL has ordered-set aggregates: the percentiles need not leave the database."""
    return conn.dialect.name == "postgresql"


def duration_stats(conn: Connection, where: Where) -> Rows:
    """PostgreSQL: min, quartiles, median, p90, max of both durations per site, and for all
    sites (``site`` NULL), in one pass. ``percentile_disc(p)`` is the nearest rank (the first
    value whose position reaches p of the count), ``percentile_cont(0.5)`` the median."""
    times = _times(where).subquery("times")
    stats: list[ColumnElement[Any]] = []
    for name in ("tta", "ttr"):
        x = times.c[name]
        stats += [
            func.count(x).label(f"{name}_n"), func.min(x).label(f"{name}_min"),
            func.percentile_disc(0.25).within_group(x).label(f"{name}_q1"),
            func.percentile_cont(0.5).within_group(x).label(f"{name}_median"),
            func.percentile_disc(0.75).within_group(x).label(f"{name}_q3"),
            func.percentile_disc(0.9).within_group(x).label(f"{name}_p90"),
            func.max(x).label(f"{name}_max"),
        ]
    query = select(times.c.site, *stats).group_by(
        func.grouping_sets(tuple_(times.c.site), tuple_()))
    return conn.execute(query).all()


def acks_on_time(conn: Connection, where: Where) -> Rows:
    """Per site and week: alerts acknowledged at level 1 (never escalated) and not late.

    Lateness and level come from the trace (``late_by_s`` and ``level`` of the
    ``acknowledged`` step): the alert row forgets its acknowledge deadline once acknowledged,
    and its level moves on when the resolve deadline escalates it. The step index finds those
    steps.
    """
    week = week_number(A.received_at).label("week")
    late = func.coalesce(T.detail["late_by_s"].as_float(), 0.0)
    level = func.coalesce(T.detail["level"].as_integer(), A.level)
    query = (
        select(A.site, week, func.count(func.distinct(T.alert_id)).label("on_time"))
        .select_from(TRACE.join(ALERT, A.id == T.alert_id))
        .where(T.step == Step.ACKNOWLEDGED.value, level == 1, late <= 0, *where.terms())
        .group_by(where.col(A.site), week)
    )
    return conn.execute(query).all()


DEADLINE_STEPS = [Step.ESCALATED.value, Step.REMINDED.value, Step.SUPPRESSED.value,
                  Step.RELEASED.value]


def deadline_steps(conn: Connection, where: Where) -> Rows:
    """Per site: escalations for the acknowledge deadline and for the resolve deadline,
    reminders, and alerts suppressed and released by maintenance windows, counted as steps of
    the alerts in scope (each alert is suppressed and released at most once). An escalation
    whose reason is not the resolve deadline was for the acknowledge deadline (the only kind
    before resolve deadlines escalated)."""
    reason = func.coalesce(T.detail["reason"].as_string(), "")
    escalated = T.step == Step.ESCALATED.value
    query = (
        select(A.site,
               count_if(and_(escalated, reason != RESOLVE_DEADLINE_PASSED)).label(
                   "escalated_ack"),
               count_if(and_(escalated, reason == RESOLVE_DEADLINE_PASSED)).label(
                   "escalated_resolve"),
               count_if(T.step == Step.REMINDED.value).label("reminded"),
               count_if(T.step == Step.SUPPRESSED.value).label("suppressed"),
               count_if(T.step == Step.RELEASED.value).label("released"))
        .select_from(TRACE.join(ALERT, A.id == T.alert_id))
        .where(T.step.in_(DEADLINE_STEPS), *where.terms())
        .group_by(where.col(A.site))
    )
    return conn.execute(query).all()


def closed_paths(conn: Connection, where: Where) -> Rows:
    """Closed alerts per site and step path (``refused`` set aside): few distinct paths.

    On a wide scan the paths of the whole trace table are grouped first (one pass in alert_id
    index order) and joined to the closed alerts in scope; otherwise only the traces of those
    alerts are read, found through the alert_id index.
    """
    closed = [A.status == Status.CLOSED.value, *where.terms()]
    steps = select(T.alert_id, step_path(T.seq, T.step).label("path")).where(
        T.step != Step.REFUSED.value)
    if not where.wide:
        steps = steps.where(T.alert_id.in_(select(A.id).where(*closed)))
    paths = steps.group_by(T.alert_id).subquery("paths")
    query = (
        select(A.site, paths.c.path, func.count().label("n"))
        .select_from(paths.join(ALERT, A.id == paths.c.alert_id))
        .where(*closed).group_by(where.col(A.site), paths.c.path)
    )
    return conn.execute(query).all()


def policy_changes(conn: Connection, scope: Scope) -> Rows:
    """The policy changes made in the period (at the scope's sites), oldest first. Severity
    and detector filters do not apply: a policy is the site's, not an alert's."""
    P = POLICY_CHANGE.c
    query = select(P.seq, P.site, P.at, P.origin, P.actor, P.where, P.old_version,
                   P.new_version, P.changes).where(P.at >= scope.since, P.at < scope.until)
    if scope.sites:
        query = query.where(P.site.in_(scope.sites))
    return conn.execute(query.order_by(P.seq)).all()
