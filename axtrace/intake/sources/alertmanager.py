"""Prometheus Alertmanager webhook (``version: "4"``): one envelope per alert of the group.

Each alert is its own occurrence: ``key`` is the alert's ``fingerprint`` (older senders without
one get ``labels-<hash>`` of the sorted labels, stable across repeats) and ``starts_at`` is its
``startsAt``. ``status: firing`` fires, ``status: resolved`` resolves; an alert without a status
takes the group's. ``endsAt`` of Go's zero time (``0001-01-01T00:00:00Z``) means no end yet.
Unknown fields (newer senders) are kept out of the way; ``truncatedAlerts`` is recorded.

Fields: title from ``annotations.summary``, else ``labels.alertname``; detector from the
``detector``, ``model`` or ``job`` label; detector version from ``model_version`` or
``version``; evidence from ``generatorURL``; site from ``labels[site_label]``, then
``commonLabels[site_label]``, then the configured default.

Severity, from ``labels.severity`` (case-insensitive; anything else, or none, is ``high``):

    critical, page              -> critical
    high, error, major          -> high
    warning, warn, medium, minor -> medium
    info, informational, low, none -> low

Alertmanager's always-firing ``Watchdog`` (``alertname=Watchdog``) opens no alert: it is a
heartbeat (:mod:`axtrace.heartbeats`) of the detector its ``detector`` label names, else of
``alertmanager``, at its site; a resolved ``Watchdog`` is no heartbeat and is ignored.

Grafana's webhook has the same shape; :mod:`.grafana` reuses :func:`parse_group`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig
from axtrace.intake.sources._common import (
    MAX_DETECTOR_CHARS,
    MAX_VERSION_CHARS,
    clean_labels,
    clip,
    derived_key,
    identity,
    join,
    make_envelope,
    need_list,
    need_obj,
    opt_obj,
    opt_str,
    parse_time,
    pick_site,
    present,
    severity,
    show,
    title,
    url,
)

SEVERITY = {
    "critical": "critical",
    "page": "critical",
    "high": "high",
    "error": "high",
    "major": "high",
    "warning": "medium",
    "warn": "medium",
    "medium": "medium",
    "minor": "medium",
    "info": "low",
    "informational": "low",
    "low": "low",
    "none": "low",
}
ACTIONS = {"firing": "fire", "resolved": "resolve"}
WATCHDOG = "Watchdog"
WATCHDOG_DETECTOR = "alertmanager"
"""The detector a ``Watchdog`` alert beats for when it has no ``detector`` label."""
GROUP_DETAILS = ("receiver", "groupKey", "externalURL", "version", "truncatedAlerts")


@dataclass(frozen=True)
class Flavour:
    """What differs between Alertmanager-shaped senders."""

    source: str
    url_keys: tuple[str, ...] = ("generatorURL",)
    alert_details: tuple[str, ...] = ()
    group_details: tuple[str, ...] = GROUP_DETAILS


@dataclass(frozen=True)
class _Group:
    flavour: Flavour
    config: SourceConfig
    status: str | None
    common: dict[str, str]
    details: dict[str, Any] = field(default_factory=dict)


def parse(body: object, config: SourceConfig) -> list[AlertEnvelope]:
    """Envelopes for every alert of an Alertmanager webhook body."""
    return parse_group(body, config, Flavour(source="alertmanager"))


def parse_group(body: object, config: SourceConfig, flavour: Flavour) -> list[AlertEnvelope]:
    """Envelopes for every alert of an Alertmanager-shaped group notification."""
    raw = need_obj(body, "body")
    alerts = need_list(raw.get("alerts"), "alerts")
    group = _Group(
        flavour=flavour,
        config=config,
        status=opt_str(raw.get("status"), "status"),
        common=clean_labels(raw.get("commonLabels"), "commonLabels"),
        details=present(raw, *flavour.group_details),
    )
    return [_alert(item, join("alerts", index), group) for index, item in enumerate(alerts)]


def _alert(item: object, where: str, group: _Group) -> AlertEnvelope:
    alert = need_obj(item, where)
    labels = clean_labels(alert.get("labels"), join(where, "labels"))
    annotations = opt_obj(alert.get("annotations"), join(where, "annotations"))
    ends_at = parse_time(alert.get("endsAt"), join(where, "endsAt"))
    if labels.get("alertname") == WATCHDOG and group.flavour.source == "alertmanager":
        return _watchdog(alert, labels, where, group)
    return make_envelope(
        where,
        source=group.flavour.source,
        action=_action(alert, where, group),
        site=_site(labels, where, group),
        key=_key(alert, labels, where),
        severity=severity(labels.get("severity"), SEVERITY),
        title=_title(annotations, labels, where, group.flavour.source),
        detector=clip(_first(labels, "detector", "model", "job"), MAX_DETECTOR_CHARS),
        detector_version=clip(_first(labels, "model_version", "version"), MAX_VERSION_CHARS),
        evidence_url=_evidence(alert, where, group.flavour.url_keys),
        labels=labels,
        starts_at=parse_time(alert.get("startsAt"), join(where, "startsAt")),
        details={
            **group.details,
            **present(alert, *group.flavour.alert_details),
            "annotations": annotations,
            "ends_at": ends_at.isoformat() if ends_at else None,
        },
    )


def _watchdog(alert: dict[str, Any], labels: dict[str, str], where: str,
              group: _Group) -> AlertEnvelope:
    """A heartbeat of the ``detector`` label's detector (else ``alertmanager``)."""
    return make_envelope(
        where, source=group.flavour.source, action="heartbeat",
        site=_site(labels, where, group), key=_key(alert, labels, where), title=WATCHDOG,
        severity=severity(labels.get("severity"), SEVERITY),
        detector=clip(labels.get("detector") or WATCHDOG_DETECTOR, MAX_DETECTOR_CHARS),
        labels=labels, starts_at=parse_time(alert.get("startsAt"), join(where, "startsAt")),
        details={"status": _action(alert, where, group)},
    )


def _action(alert: dict[str, Any], where: str, group: _Group) -> str:
    status = opt_str(alert.get("status"), join(where, "status")) or group.status or "firing"
    if status not in ACTIONS:
        message = f"status must be 'firing' or 'resolved', got {show(status)}"
        raise ParseError(message, field=join(where, "status"))
    return ACTIONS[status]


def _key(alert: dict[str, Any], labels: dict[str, str], where: str) -> str:
    fingerprint = opt_str(alert.get("fingerprint"), join(where, "fingerprint"))
    if fingerprint is None:  # older senders: a stable hash of the sorted labels
        return derived_key("labels", sorted(labels.items()))
    return identity(fingerprint, join(where, "fingerprint"))


def _site(labels: dict[str, str], where: str, group: _Group) -> str | None:
    name = group.config.site_label
    candidates = [
        (join(where, "labels", name), labels.get(name)),
        (join("commonLabels", name), group.common.get(name)),
    ]
    return pick_site(candidates, group.config)


def _title(annotations: dict[str, Any], labels: dict[str, str], where: str, source: str) -> str:
    summary = opt_str(annotations.get("summary"), join(where, "annotations", "summary"))
    return title(summary, labels.get("alertname"), fallback=f"{source} alert")


def _evidence(alert: dict[str, Any], where: str, keys: tuple[str, ...]) -> str | None:
    for name in keys:
        found = url(alert.get(name), join(where, name))
        if found is not None:
            return found
    return None


def _first(labels: dict[str, str], *names: str) -> str | None:
    return next((labels[name] for name in names if labels.get(name)), None)
