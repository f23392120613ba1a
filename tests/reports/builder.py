"""Ledgers for report tests: alerts written the way the workflow writes them, step by step.

Every alert gets a real, hash-chained trace through ``repo.append_step`` and the alert row the
workflow would leave; times are seconds after the alert was received, so expected figures can
be worked out by hand. Deadlines: acknowledge within ``ACK_S`` per level, resolve within
``RESOLVE_S`` of receipt, and ``RESOLVE_S`` again for each level a resolve deadline escalates to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from axtrace.ledger import repo
from axtrace.ledger.models import (
    ACK_DEADLINE_PASSED,
    RESOLVE_DEADLINE_PASSED,
    Alert,
    AlertCreate,
    Status,
    Step,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""A Monday."""
NOW = T0 + timedelta(days=10)
ACK_S = 300
RESOLVE_S = 3600


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Ledger:
    """Writes alert stories into one session (committed at each alert's end)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.count = 0

    def alert(
        self, site: str, *, after: float = 0, severity: str = "high",
        detector: str | None = "vision-qa", version: str | None = "1.0",
        ack: float | None = None, escalations: int = 0, ignored: bool = False,
        resolve: float | None = None, outcome: str = "fixed", close: bool = True,
        refusals: int = 0, workflow: str = "wf-2", policy: str = "pol-1",
        assign: bool = True, steps: Sequence[str] | None = None,
        resolve_escalations: int = 0, reminders: int = 0, overdue: bool = False,
        suppress: float | None = None,
    ) -> int:
        """One alert received ``after`` seconds past T0; ``ack``/``resolve`` are seconds after
        receipt; ``steps`` replaces the trace written (the alert row stays as told). After the
        acknowledgement, ``resolve_escalations`` resolve deadlines pass, ``reminders``
        reminders come a minute apart, and ``overdue`` marks the last deadline passed.
        ``suppress``: a maintenance window held it back that long after receipt; it is then
        released (and its deadlines start) unless resolved (at the source) before."""
        self.count += 1
        received = at(after)
        row = repo.create_alert(
            session=self.session, actor="test", dispatch=False, at=received,
            alert=AlertCreate(site=site, key=f"k{self.count}", title=f"alert {self.count}",
                              severity=severity, detector=detector, detector_version=version))
        story: list[tuple[Step, datetime, dict[str, object]]] = []
        if assign:
            self._assign(row, received, workflow, policy, story)
            if suppress is not None:
                self._suppress(row, received, story, until=suppress, resolve=resolve)
            self._respond(row, received, story, ack=ack, escalations=escalations,
                          ignored=ignored, refusals=refusals)
            self._linger(row, story, escalations=resolve_escalations, reminders=reminders,
                         overdue=overdue)
            self._finish(row, received, story, resolve=resolve, outcome=outcome, close=close)
        self._write(row, story, steps)
        assert row.id is not None
        return row.id

    def _assign(self, row: Alert, received: datetime, workflow: str, policy: str,
                story: list[tuple[Step, datetime, dict[str, object]]]) -> None:
        row.level, row.notified_level = 1, 1
        row.workflow_version, row.policy_version = workflow, policy
        row.ack_deadline = received + timedelta(seconds=ACK_S)
        row.resolve_deadline = received + timedelta(seconds=RESOLVE_S)
        story += [(Step.ASSIGNED, received, {"level": 1}),
                  (Step.NOTIFIED, received, {"level": 1})]

    def _suppress(self, row: Alert, received: datetime,
                  story: list[tuple[Step, datetime, dict[str, object]]], *, until: float,
                  resolve: float | None) -> None:
        """Suppressed on assignment; released at ``until`` unless resolved before (then never
        notified), or still held (``suppressed_until`` set) when the window has not ended."""
        end = received + timedelta(seconds=until)
        row.notified_level, row.ack_deadline, row.resolve_deadline = 0, None, None
        story[-1:] = [(Step.SUPPRESSED, received, {"until": end})]
        if resolve is not None and resolve < until:
            return
        if end > NOW:
            row.suppressed_until = end
            return
        row.notified_level = 1
        row.ack_deadline = end + timedelta(seconds=ACK_S)
        row.resolve_deadline = end + timedelta(seconds=RESOLVE_S)
        story += [(Step.RELEASED, end, {"level": 1}), (Step.NOTIFIED, end, {"level": 1})]

    def _respond(self, row: Alert, received: datetime,
                 story: list[tuple[Step, datetime, dict[str, object]]], *, ack: float | None,
                 escalations: int, ignored: bool, refusals: int) -> None:
        for level in range(1, escalations + 1):
            when = received + timedelta(seconds=ACK_S * level)
            row.level = row.notified_level = level + 1
            row.ack_deadline = when + timedelta(seconds=ACK_S)
            story += [(Step.ESCALATED, when, {"from_level": level, "to_level": level + 1,
                                              "reason": ACK_DEADLINE_PASSED}),
                      (Step.NOTIFIED, when, {"level": level + 1})]
        last = story[-1][1]
        story += [(Step.REFUSED, last + timedelta(seconds=1 + i), {"action": "acknowledge"})
                  for i in range(refusals)]
        if ignored:
            when = received + timedelta(seconds=ACK_S * (escalations + 1))
            row.status, row.ack_deadline = Status.IGNORED.value, None
            story.append((Step.IGNORED, when, {"level": row.level}))
        elif ack is not None:
            when = received + timedelta(seconds=ack)
            assert row.ack_deadline is not None
            late = (when - row.ack_deadline).total_seconds()
            row.status, row.acknowledged_at, row.acknowledged_by = (
                Status.ACKNOWLEDGED.value, when, "someone")
            row.ack_deadline = None
            story.append((Step.ACKNOWLEDGED, when,
                          {"level": row.level, "late_by_s": late if late > 0 else None}))

    def _linger(self, row: Alert, story: list[tuple[Step, datetime, dict[str, object]]], *,
                escalations: int, reminders: int, overdue: bool) -> None:
        """An acknowledged alert's resolve deadlines passing, and the reminders it got."""
        for _ in range(escalations):
            assert row.resolve_deadline is not None
            when, level = row.resolve_deadline, row.level
            row.level = row.notified_level = level + 1
            row.resolve_deadline = when + timedelta(seconds=RESOLVE_S)
            story += [(Step.ESCALATED, when, {"from_level": level, "to_level": level + 1,
                                              "reason": RESOLVE_DEADLINE_PASSED}),
                      (Step.NOTIFIED, when, {"level": level + 1})]
        last = story[-1][1]
        story += [(Step.REMINDED, last + timedelta(minutes=1 + i), {"level": row.level})
                  for i in range(reminders)]
        if overdue:
            assert row.resolve_deadline is not None
            row.overdue_at = row.resolve_deadline
            story.append((Step.OVERDUE, row.overdue_at, {"level": row.level}))

    def _finish(self, row: Alert, received: datetime,
                story: list[tuple[Step, datetime, dict[str, object]]], *,
                resolve: float | None, outcome: str, close: bool) -> None:
        if resolve is None:
            return
        when = received + timedelta(seconds=resolve)
        row.status, row.resolved_at, row.outcome = Status.RESOLVED.value, when, outcome
        row.ack_deadline = None
        story.append((Step.RESOLVED, when, {"outcome": outcome}))
        if close:
            row.status, row.closed_at, row.open_key = Status.CLOSED.value, when, None
            story.append((Step.CLOSED, when, {"outcome": outcome}))

    def _write(self, row: Alert, story: list[tuple[Step, datetime, dict[str, object]]],
               steps: Sequence[str] | None) -> None:
        assert row.id is not None
        if steps is not None:
            when = story[-1][1] if story else row.received_at
            story = [(Step(s), when, {}) for s in steps if s != Step.RECEIVED.value]
        for step, when, detail in story:
            repo.append_step(session=self.session, alert_id=row.id, step=step, actor="test",
                             at=when, detail=detail)
        self.session.add(row)
        self.session.commit()


def three_sites(ledger: Ledger) -> None:
    """The hand-worked ledger of ``test_figures.py`` (see its docstring for the answers)."""
    a = ledger.alert
    a("alpha", after=0, ack=60, resolve=600)
    a("alpha", after=3600, ack=120, resolve=1200)
    a("alpha", after=7200, ack=180, resolve=4000, outcome="false_positive", refusals=1)
    a("alpha", after=10800, ack=400)
    a("alpha", after=14400, ack=240, resolve=900,
      steps=["received", "assigned", "acknowledged", "resolved", "closed"])
    a("beta", after=0, escalations=1, ack=400, resolve=1800, outcome="known_issue",
      detector="forecast", version="3")
    a("beta", after=3600, escalations=1, ack=500, resolve=2000, workflow="wf-1")
    a("beta", after=7200, ack=100, resolve=700)
    a("beta", after=10800, ack=200, severity="critical")
    a("gamma", after=0, escalations=1, ignored=True, resolve=3000, outcome="false_positive")
    a("gamma", after=3600, escalations=1, ignored=True)
    a("gamma", after=(NOW - T0).total_seconds() - 60)
