"""AxTrace's own alert JSON, for AI detectors that post to AxTrace directly.

One alert object, or a batch ``{"alerts": [alert, ...]}``::

    {
      "site": "berlin-plant",               optional; else labels[site_label], else the default
      "key": "weld-seam-3",                 optional; else native-<hash of detector and title>
      "title": "Weld seam anomaly",         required; cut to 500 characters
      "severity": "high",                   critical | high | medium | low (default high)
      "action": "fire",                     fire | resolve | acknowledge (default fire)
      "detector": "seam-vision",            optional, at most 200 characters
      "detector_version": "2.4.1",          optional, at most 100 characters
      "confidence": 0.93,                   optional, between 0 and 1
      "evidence_url": "https://...",        optional, http(s)
      "labels": {"line": "3"},              optional, str -> str (numbers become text)
      "detected_at": "2025-05-01T08:00:00Z",optional, RFC 3339
      "details": {...}                      optional, any object, kept as sent
    }

This is AxTrace's own format, so it is checked strictly: a wrong type, an unknown severity or
action, a non-http evidence URL or an over-long key is refused. Unknown fields are ignored.
"""

from __future__ import annotations

from typing import Any

from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig
from axtrace.intake.sources._common import (
    clean_labels,
    confidence,
    derived_key,
    identity,
    join,
    make_envelope,
    need_list,
    need_obj,
    need_str,
    opt_obj,
    opt_str,
    parse_time,
    pick_site,
    show,
    title,
    url,
)
from axtrace.vocabulary import SEVERITIES

ACTIONS = ("fire", "resolve", "acknowledge")


def parse(body: object, config: SourceConfig) -> list[AlertEnvelope]:
    """Envelopes for one native alert or a ``{"alerts": [...]}`` batch."""
    if isinstance(body, dict) and "alerts" in body:
        alerts = need_list(body["alerts"], "alerts")
        return [_alert(item, join("alerts", index), config) for index, item in enumerate(alerts)]
    return [_alert(body, "", config)]


def _alert(item: object, where: str, config: SourceConfig) -> AlertEnvelope:
    alert = need_obj(item, where)
    heading = title(need_str(alert.get("title"), join(where, "title")), fallback="")
    detector = opt_str(alert.get("detector"), join(where, "detector"))
    labels = clean_labels(alert.get("labels"), join(where, "labels"))
    return make_envelope(
        where,
        source="native",
        action=_choice(alert, "action", ACTIONS, "fire", where),
        site=_site(alert, labels, where, config),
        key=_key(alert, detector, heading, where),
        severity=_choice(alert, "severity", SEVERITIES, "high", where),
        title=heading,
        detector=detector,
        detector_version=opt_str(alert.get("detector_version"), join(where, "detector_version")),
        confidence=confidence(alert.get("confidence"), join(where, "confidence")),
        evidence_url=url(alert.get("evidence_url"), join(where, "evidence_url"), strict=True),
        labels=labels,
        detected_at=parse_time(alert.get("detected_at"), join(where, "detected_at")),
        details=opt_obj(alert.get("details"), join(where, "details")),
    )


def _choice(
    alert: dict[str, Any], name: str, allowed: tuple[str, ...], default: str, where: str
) -> str:
    value = opt_str(alert.get(name), join(where, name))
    if value is None:
        return default
    if value.strip().lower() not in allowed:
        message = f"must be one of {', '.join(allowed)}; got {show(value)}"
        raise ParseError(message, field=join(where, name))
    return value.strip().lower()


def _key(alert: dict[str, Any], detector: str | None, heading: str, where: str) -> str:
    key = opt_str(alert.get("key"), join(where, "key"))
    if key is None:
        return derived_key("native", detector, heading)
    return identity(key, join(where, "key"))


def _site(
    alert: dict[str, Any], labels: dict[str, str], where: str, config: SourceConfig
) -> str | None:
    name = config.site_label
    candidates = [
        (join(where, "site"), alert.get("site")),
        (join(where, "labels", name), labels.get(name)),
    ]
    return pick_site(candidates, config)
