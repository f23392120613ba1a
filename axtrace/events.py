"""Prefect events for every step: ``axtrace.alert.<step>`` about the alert, related to its site."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class AlertLike(Protocol):
    """What an event names of an alert: a ledger ``Alert``, or the intake's ``Received``."""

    @property
    def id(self) -> int | None: ...
    @property
    def site(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def flow_run_id(self) -> str | None: ...


def alert_resource(alert: AlertLike) -> dict[str, str]:
    return {
        "prefect.resource.id": f"axtrace.alert.{alert.id}",
        "prefect.resource.name": f"{alert.site}/{alert.id}",
        "axtrace.site": alert.site,
        "axtrace.alert": str(alert.id),
        "axtrace.severity": alert.severity,
    }


def site_resource(site: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"axtrace.site.{site}",
        "prefect.resource.role": "site",
        "prefect.resource.name": site,
    }


def emit_step(step: str, alert: AlertLike, detail: dict[str, Any], actor: str) -> None:
    """Emit ``axtrace.alert.<step>``; inside a flow run Prefect adds the run as related too."""
    from prefect.events import emit_event

    related = [site_resource(alert.site)]
    if alert.flow_run_id:
        related.append({
            "prefect.resource.id": f"prefect.flow-run.{alert.flow_run_id}",
            "prefect.resource.role": "flow-run",
        })
    emit_event(
        event=f"axtrace.alert.{step}",
        resource=alert_resource(alert),
        related=related,
        payload={"actor": actor, **detail},
    )


Step = tuple[str, AlertLike, dict[str, Any], str]
"""One step to announce: (step, alert, detail, actor)."""


def emit_steps(steps: Sequence[Step]) -> None:
    """Emit the events of several steps at once, as :func:`emit_step` would one by one, for
    the intake's hot path: Prefect's checks (may this process emit? which events worker?) run
    once for all of them, and each event is built from parts known to be valid (the resource
    shapes of :func:`alert_resource` and :func:`site_resource`) instead of being validated
    again. The events worker sends them as it sends every other event."""
    from prefect.events.clients import NullEventsClient
    from prefect.events.worker import EventsWorker, should_emit_events

    if not steps or not should_emit_events():
        return
    worker = EventsWorker.instance()
    if worker.client_type is NullEventsClient:
        return
    for step in steps:
        worker.send(_event(*step))


def _event(step: str, alert: AlertLike, detail: dict[str, Any], actor: str) -> Any:
    from prefect._internal.uuid7 import uuid7
    from prefect.events import Event, RelatedResource, Resource
    from prefect.types._datetime import now

    related = [RelatedResource.model_construct(root=site_resource(alert.site))]
    if alert.flow_run_id:
        related.append(RelatedResource.model_construct(root={
            "prefect.resource.id": f"prefect.flow-run.{alert.flow_run_id}",
            "prefect.resource.role": "flow-run",
        }))
    return Event.model_construct(
        occurred=now("UTC"),  # type: ignore[arg-type]  # DateTime is this datetime
        event=f"axtrace.alert.{step}",
        resource=Resource.model_construct(root=alert_resource(alert)), related=related,
        payload={"actor": actor, **detail}, id=uuid7(), follows=None,
    )


class StepEvents:
    """Steps announced by the code of one event loop, emitted together once per turn of the
    loop (:func:`emit_steps`), right after the code that announced them: as soon as today's
    one-by-one ``emit_event``, and lost in the same cases only (a process that dies before
    Prefect's events worker sent them)."""

    def __init__(self) -> None:
        self.pending: list[Step] = []
        self.scheduled = False

    def add(self, step: str, alert: AlertLike, detail: dict[str, Any], actor: str) -> None:
        self.pending.append((step, alert, detail, actor))
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        pending, self.pending, self.scheduled = self.pending, [], False
        try:
            emit_steps(pending)
        except Exception:  # as emit_event: an event is never worth a failed request
            logger.exception("could not emit %d AxTrace events", len(pending))
