"""Acting on an alert from outside its run: the CLI and the HTTP API end here.

Both end in the same flow input as the Prefect UI's form: ``resume_flow_run`` with the typed
answer. Someone who may not act is refused here (403), recorded in the trace, and the run
keeps waiting. Prefect lets exactly one resume of a paused run through; a loser looks again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from sqlmodel import Session

from axtrace.errors import Conflict, Forbidden, InvalidInput, Unavailable
from axtrace.events import emit_step
from axtrace.ledger import repo
from axtrace.ledger.models import Alert, Outcome, Status, Step
from axtrace.ledger.session import in_transaction
from axtrace.workflow import StepRecord, load_alert, refusal, suppressed_reason

Action = Literal["acknowledge", "resolve"]
_ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "acknowledge": (Status.OPEN.value,),
    "resolve": (Status.ACKNOWLEDGED.value, Status.IGNORED.value),
}


def _check(alert: Alert, action: Action, who: str) -> None:
    _check_status(alert, action, who)
    from axtrace import ownership

    if alert.policy is not None and not ownership.may_act(alert.policy, alert.level, who,
                                                             alert.on_call):
        record_refusal(alert.id or 0, who, action)
        # who may is not said: the caller may be anyone who reaches the API
        raise Forbidden(
            f"'{who}' is not a responder at level {alert.level} or earlier of alert "
            f"{alert.id}, so may not {action} it",
            field="responder",
        )


def _check_status(alert: Alert, action: Action, who: str) -> None:
    """An action the alert's state no longer allows (someone else was first), or does not
    allow yet (a maintenance window suppresses it), is refused."""
    if alert.suppressed_until is not None and alert.status == Status.OPEN:
        reason = f"{suppressed_reason(alert)}; no one needs to act before it is released"
        record_refusal(alert.id or 0, who, action, reason)
        raise Conflict(reason, field="status")
    if alert.status in _ALLOWED_FROM[action]:
        return
    if alert.status == Status.OPEN:
        reason = f"alert {alert.id} is open: acknowledge it before resolving"
    else:
        by = alert.acknowledged_by if alert.status == Status.ACKNOWLEDGED else alert.resolved_by
        done_by = f" by {by}" if by else ""
        reason = f"alert {alert.id} is already {alert.status}{done_by}; cannot {action} it now"
    record_refusal(alert.id or 0, who, action, reason)
    raise Conflict(reason, field="status")


def record_refusal(alert_id: int, who: str, action: str, reason: str | None = None) -> None:
    def work(session: Session) -> StepRecord:
        alert = repo.get_alert(session=session, alert_id=alert_id)
        return refusal(session, alert, who, action, reason)

    refused = in_transaction(work)
    emit_step(refused.step.value, refused.alert, refused.detail, refused.actor)


async def act(
    alert_id: int, action: Action, who: str, *, note: str = "", outcome: str | None = None,
    wait_seconds: float = 60.0,
) -> Alert:
    """Give the alert's waiting run this answer; return the alert once the run has taken it."""
    from prefect import get_client

    if not who.strip():
        raise InvalidInput("responder must not be empty", field="responder")
    if action == "resolve" and outcome not in {o.value for o in Outcome}:
        choices = ", ".join(o.value for o in Outcome)
        raise InvalidInput(f"outcome must be one of {choices}, got {outcome!r}", field="outcome")
    answer: dict[str, Any] = {"responder": who, "note": note}
    if action == "resolve":
        answer["outcome"] = outcome
    deadline = time.monotonic() + wait_seconds
    refused = ""
    async with get_client() as client:
        while True:
            alert = await asyncio.to_thread(load_alert, alert_id)
            if alert.level == 0 or alert.flow_run_id is None:
                await asyncio.to_thread(_check_status, alert, action, who)
            else:
                await asyncio.to_thread(_check, alert, action, who)
                taken, refused = await _offer(client, alert, action, answer, deadline)
                if taken is not None:
                    await asyncio.to_thread(_check_won, alert, taken, action, who)
                    return taken
            if time.monotonic() > deadline:
                why = f" (its last refusal: {refused})" if refused else ""
                raise Unavailable(f"the run of alert {alert_id} is not waiting for {action} "
                                  f"yet; try again{why}", field="alert_id")
            await asyncio.sleep(0.3)


async def _offer(client: Any, alert: Alert, action: Action, answer: dict[str, Any],
                 deadline: float) -> tuple[Alert | None, str]:
    """Resume the alert's run with ``answer`` if it waits for this action: the alert once the
    run has taken it, else None and Prefect's reason for a refusal ("" if it was not waiting).
    A refusal (the run moved on between the read and the resume) is not an error: the next
    pass checks the alert again, and says why or lets the answer through."""
    from prefect.client.schemas.responses import SetStateStatus

    run = await client.read_flow_run(alert.flow_run_id)
    state = run.state
    if not (state and state.is_paused()
            and state.state_details.pause_key == f"{action}-{alert.wait_seq}"):
        return None, ""
    result = await client.resume_flow_run(run.id, run_input=answer)
    if result.status != SetStateStatus.ACCEPT:
        return None, str(getattr(result.details, "reason", "") or "")
    return await _taken(alert, deadline), ""


async def _taken(before: Alert, deadline: float) -> Alert:
    """Wait until the run has taken the answer (its wait counter moved on)."""
    while True:
        alert = await asyncio.to_thread(load_alert, before.id or 0)
        if alert.wait_seq > before.wait_seq or time.monotonic() > deadline:
            return alert
        await asyncio.sleep(0.3)


def _check_won(before: Alert, after: Alert, action: Action, who: str) -> None:
    """Two resumes that read the run as paused at the same moment are both accepted by
    Prefect, yet the run takes one answer: the other caller lost, and is told so (409)."""
    if after.wait_seq == before.wait_seq:
        return  # not taken yet: the caller gets the alert as it stands
    actor = after.acknowledged_by if action == "acknowledge" else after.resolved_by
    if actor is not None and actor != who:
        reason = f"alert {after.id} was {action}d by {actor} first; cannot {action} it now"
        record_refusal(after.id or 0, who, action, reason)
        raise Conflict(reason, field="status")


__all__ = ["Action", "Step", "act", "record_refusal"]
