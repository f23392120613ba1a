"""The body of ``respond-to-alert``: a loop over the ledger that runs the step each
:class:`~axtrace.workflow.transitions.Phase` calls for, as Prefect tasks, and waits for people.

Wiring only: which task runs in which phase (:func:`tasks`) and the loop (:func:`respond`).
The decisions are in :mod:`~axtrace.workflow.transitions`, the writes in
:mod:`~axtrace.workflow.steps` and :mod:`~axtrace.workflow.answers`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from axtrace.ledger.models import Step
from axtrace.text import markdown_text
from axtrace.workflow import answers, steps
from axtrace.workflow.prefect_io import publish_artifact, wait_for_answer
from axtrace.workflow.records import Answer, ManualAlert
from axtrace.workflow.steps import load_alert
from axtrace.workflow.transitions import Phase, decide, summary

if TYPE_CHECKING:
    from prefect import Task

FLOW_NAME = "respond-to-alert"
FLOW_ENTRYPOINT = "flows/respond.py:respond_to_alert"

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Tasks:
    """The run's steps as Prefect tasks."""

    record: Task[[str, int | None, ManualAlert], int | None]
    answer: Task[[int, Phase, int, Answer], Step | None]
    by_phase: dict[Phase, Task[[int], dict[str, Any]]]
    """The step each phase that needs no one runs; the others wait for an answer."""


def tasks() -> Tasks:
    """The task table, made when the run starts (Prefect is imported then, not before)."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    def make(fn: Callable[P, R], name: str) -> Task[P, R]:
        return task(name=name, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)(fn)

    return Tasks(
        record=make(steps.record_alert, "record"),
        answer=make(answers.take_answer, "take-answer"),
        by_phase={
            Phase.ASSIGN: make(steps.assign, "assign"),
            Phase.SOURCE_RESOLVE: make(steps.resolve_at_source, "resolve-at-source"),
            Phase.NOTIFY: make(steps.notify, "notify"),
            Phase.CLOSE: make(steps.close, "close"),
        },
    )


async def respond(*, site: str, alert_id: int | None, manual: ManualAlert) -> dict[str, Any]:
    """The body of ``respond-to-alert``: safe to run again from the top after every resume."""
    table = tasks()
    own_id = table.record(site, alert_id, manual)
    if own_id is None:
        return {"alert_id": alert_id, "site": site, "status": "handled-by-another-run"}
    while True:
        alert = load_alert(own_id)
        phase = decide(alert)
        if phase is Phase.DONE:
            await publish_artifact(alert, f"Closed; outcome **{markdown_text(alert.outcome)}**.")
            return summary(alert)
        step = table.by_phase.get(phase)
        if step is not None:
            step(own_id)
            continue
        answer = await wait_for_answer(alert, phase)
        table.answer(own_id, phase, alert.wait_seq, answer)
