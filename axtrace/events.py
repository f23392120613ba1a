"""Prefect events for every step: ``axtrace.alert.<step>`` about the alert, related to its site."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol


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


RECEIVED_NAMESPACE = uuid.UUID("5d1c6f0e-3b7a-4f43-9c1e-a7e2d1c0b9f4")
"""The namespace of the ``received`` events' ids: one id per alert, so a relay repeated after
a crash announces the same event, which Prefect stores once."""


def emit_received(alert: AlertLike, *, source: str, received_at: datetime, run_id: str) -> None:
    """``axtrace.alert.received`` for an alert the intake accepted, emitted by the relay once
    its run exists (related to the site and the run), dated when the intake accepted it.

    The intake's request path emits nothing: the event rides the outbox row the intake
    committed with the alert (durable before the 2xx), so a process that dies after the
    commit loses no event, and a repeated relay repeats the same id, not the event."""
    from prefect.events import Event, RelatedResource, Resource
    from prefect.events.clients import NullEventsClient
    from prefect.events.worker import EventsWorker, should_emit_events

    if not should_emit_events():
        return
    worker = EventsWorker.instance()
    if worker.client_type is NullEventsClient:
        return
    related = [RelatedResource.model_construct(root=site_resource(alert.site)),
               RelatedResource.model_construct(root={
                   "prefect.resource.id": f"prefect.flow-run.{run_id}",
                   "prefect.resource.role": "flow-run"})]
    worker.send(Event.model_construct(
        occurred=received_at.astimezone(UTC),  # type: ignore[arg-type]  # DateTime is this
        event="axtrace.alert.received",
        resource=Resource.model_construct(root=alert_resource(alert)), related=related,
        payload={"actor": f"intake:{source}", "source": source},
        id=uuid.uuid5(RECEIVED_NAMESPACE, str(alert.id)), follows=None,
    ))
