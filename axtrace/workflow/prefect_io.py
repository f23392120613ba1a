"""What a run shows and asks in Prefect: the answer forms, the run's name and tags, the
alert's Markdown artifact, the site's policy block, and the suspensions that wait for people.

Prefect I/O only: nothing here writes to the ledger or decides a step (it reads an alert's
trace for the artifact). Prefect is imported inside the functions, so importing the workflow
stays cheap for the API and the CLI.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field, create_model

from axtrace import ownership
from axtrace.ledger import repo
from axtrace.ledger.models import HUMAN_OUTCOMES, Alert
from axtrace.ledger.session import ledger_session
from axtrace.text import markdown_link, markdown_text
from axtrace.workflow.records import Answer
from axtrace.workflow.transitions import Phase, pause_key, suppressed_reason

if TYPE_CHECKING:
    from axtrace_blocks import OwnershipPolicy

BACKSTOP = timedelta(days=30)
"""Prefect fails a suspended run after this; AxTrace's own deadlines are far shorter."""


# --------------------------------------------------------------------------- the run itself


def current_run_id() -> str | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else None


def label_run(alert: Alert) -> None:
    """Name the run ``<site>/<alert>`` and tag it with site and severity."""
    if not alert.flow_run_id:
        return
    from prefect import get_client
    from prefect.client.schemas.actions import FlowRunUpdate  # noqa: F401  (typing aid)
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context else None
    tags = set(run.tags) if run else set()
    wanted = tags | {f"site:{alert.site}", f"severity:{alert.severity}"}
    name = f"{alert.site}/{alert.id}"
    if run is not None and run.name == name and wanted == tags:
        return  # labelled by an earlier execution of this run: no API call on every resume
    tags = wanted
    with get_client(sync_client=True) as client:
        client.update_flow_run(
            flow_run_id=cast(Any, alert.flow_run_id), name=name,
            tags=sorted(tags),
        )


def site_policy(site: str) -> OwnershipPolicy:
    """The site's policy block as it is now (``LookupError`` saying how to add one)."""
    from axtrace_blocks import OwnershipPolicy

    try:
        return cast(OwnershipPolicy, OwnershipPolicy.load(site))
    except ValueError as exc:
        raise LookupError(
            f"no ownership policy for site '{site}': add it to sites.yaml and run "
            "`axtrace sites apply`"
        ) from exc


# --------------------------------------------------------------------------- forms


def answer_form(alert: Alert, phase: Phase) -> type[Any]:
    """The typed ``RunInput`` the Prefect UI renders for this wait: responders as a choice."""
    from prefect.input import RunInput

    pinned = cast(dict[str, Any], alert.policy)
    allowed = ownership.responders(pinned, alert.level, alert.on_call)
    # a choice list, made per wait (no one to choose: only the empty answer)
    choice: Any = Literal.__getitem__(tuple(allowed)) if allowed else type(None)
    fields: dict[str, Any] = {
        "responder": (choice | None, Field(default=None, description="Who you are.")),
        "note": (str, Field(default="", description="Optional note for the trace.")),
    }
    if phase is Phase.RESOLVE:
        outcomes: Any = Literal.__getitem__(HUMAN_OUTCOMES)
        fields["outcome"] = (
            outcomes | None,
            Field(default=None, description="How it ended (the reason code)."),
        )
    name = "Acknowledge" if phase is Phase.ACKNOWLEDGE else "Resolve"
    model = create_model(name, __base__=RunInput, **fields)
    model._description = _form_description(alert, phase, allowed)
    return model


def _form_description(alert: Alert, phase: Phase, allowed: list[str]) -> str:
    deadline = alert.ack_deadline if phase is Phase.ACKNOWLEDGE else alert.resolve_deadline
    due = deadline.strftime("%Y-%m-%d %H:%M:%S UTC") if deadline else "none"
    verb = "Acknowledge" if phase is Phase.ACKNOWLEDGE else "Resolve"
    return (
        f"### {verb} alert {alert.id} at {markdown_text(alert.site)}\n\n"
        f"**{markdown_text(alert.title)}** (severity {markdown_text(alert.severity)})\n\n"
        f"Level {alert.level}; who may answer: {_names(allowed)}. Deadline: {due}.\n"
    )


def _names(names: list[str]) -> str:
    """Responder names for Markdown: each one escaped (they are policy text, not markup)."""
    return ", ".join(markdown_text(name) for name in names)


# --------------------------------------------------------------------------- waits


async def wait_for_answer(alert: Alert, phase: Phase) -> Answer:
    """Suspend the run until someone answers (or the sweeper wakes it at the deadline)."""
    from prefect import get_run_logger
    from prefect.flow_runs import suspend_flow_run

    if phase is Phase.SUPPRESSED:
        return await wait_for_release(alert)
    allowed = ownership.responders(cast(dict[str, Any], alert.policy), alert.level,
                                   alert.on_call)
    deadline = alert.ack_deadline if phase is Phase.ACKNOWLEDGE else alert.resolve_deadline
    get_run_logger().info(
        "Waiting for %s of alert %s at %s from one of %s (deadline %s)",
        phase.value, alert.id, alert.site, ", ".join(allowed),
        deadline.isoformat() if deadline else "none",
    )
    await publish_artifact(alert, waiting_line(alert, phase, allowed))
    given = await suspend_flow_run(
        wait_for_input=answer_form(alert, phase), key=pause_key(alert, phase),
        timeout=int(BACKSTOP.total_seconds()),
    )
    return Answer(
        responder=given.responder, note=given.note or "", outcome=getattr(given, "outcome", None),
        answered_at=await _answered_at(alert, pause_key(alert, phase)),
    )


async def wait_for_release(alert: Alert) -> Answer:
    """Suspend the run of a suppressed alert until the sweeper wakes it at the window's end
    (or the source resolves it): no form, no one is asked anything."""
    from prefect import get_run_logger
    from prefect.flow_runs import asuspend_flow_run

    line = f"{suppressed_reason(alert)}: no one is paged."
    get_run_logger().info(line)
    await publish_artifact(alert, markdown_text(line))
    await asuspend_flow_run(key=pause_key(alert, Phase.SUPPRESSED),
                           timeout=int(BACKSTOP.total_seconds()))
    return Answer()


async def _answered_at(alert: Alert, key: str) -> datetime | None:
    """When the answer reached Prefect (not when this process got to it)."""
    from uuid import UUID

    from prefect import get_client

    async with get_client() as client:
        found = await client.filter_flow_run_input(
            flow_run_id=UUID(alert.flow_run_id), key_prefix=f"suspended-{key}-response",
            limit=1, exclude_keys=set(),
        )
    return found[0].created if found else None


# --------------------------------------------------------------------------- the artifact


def waiting_line(alert: Alert, phase: Phase, allowed: list[str]) -> str:
    deadline = alert.ack_deadline if phase is Phase.ACKNOWLEDGE else alert.resolve_deadline
    due = f" until {deadline:%Y-%m-%d %H:%M:%S} UTC" if deadline else ""
    return f"Waiting for **{phase.value}** from {_names(allowed)}{due}."


def artifact_markdown(alert: Alert, trace: list[Any], status_line: str) -> str:
    """The run's page in the UI: the alert, who must act, and the trace so far.

    Every alert field is escaped (:func:`axtrace.text.markdown_text`): a title or actor name
    cannot add trace rows, links, images or control bytes to the page. ``status_line`` is
    AxTrace's own Markdown, built from escaped parts."""
    evidence = markdown_link("evidence", alert.evidence_url, empty="no evidence link")
    rows = "\n".join(
        f"| {e.seq} | {e.at:%Y-%m-%d %H:%M:%S} | {markdown_text(e.step)} "
        f"| {markdown_text(e.actor)} |" for e in trace
    )
    return (
        f"## Alert {alert.id} at {markdown_text(alert.site)}: {markdown_text(alert.title)}\n\n"
        f"Severity **{markdown_text(alert.severity)}**; detector "
        f"{markdown_text(alert.detector or '-')} {markdown_text(alert.detector_version or '')}; "
        f"{evidence}.\n\n"
        f"Owner **{markdown_text(alert.owner)}**, level {alert.level}, status "
        f"**{markdown_text(alert.status)}**. {status_line}\n\n"
        f"| # | at (UTC) | step | actor |\n|---|---|---|---|\n{rows}\n"
    )


async def publish_artifact(alert: Alert, status_line: str) -> None:
    """One markdown artifact per alert (key ``alert-<id>``); each wait adds a version."""
    from prefect.artifacts import acreate_markdown_artifact

    with ledger_session() as session:
        trace = list(repo.trace_of(session=session, alert_id=alert.id or 0))
    await acreate_markdown_artifact(
        key=f"alert-{alert.id}", markdown=artifact_markdown(alert, trace, status_line),
        description=f"Alert {alert.id} at {markdown_text(alert.site)}: where the response stands",
    )
