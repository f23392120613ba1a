"""Prefect events for every step: ``axtrace.alert.<step>`` about the alert, related to its site."""

from __future__ import annotations

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
