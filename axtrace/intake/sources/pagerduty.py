"""PagerDuty Events API v2 (the body of ``POST /v2/enqueue``), for PagerDuty-style senders.

``event_action`` ``trigger`` fires, ``acknowledge`` acknowledges, ``resolve`` resolves, all by
``dedup_key`` (the envelope ``key``). ``acknowledge`` and ``resolve`` need a ``dedup_key``. A
``trigger`` without one gets ``pd-<hash>`` of the routing key and the payload's ``source``,
``summary``, ``component``, ``group`` and ``class`` (stable, so a repeated trigger matches);
the caller must answer it as ``dedup_key`` so the sender can resolve later. A trigger needs
``payload.summary``, ``payload.source`` and ``payload.severity``, as PagerDuty requires.

Severity (``payload.severity``; any other value is refused, as PagerDuty does):

    critical -> critical     error -> high     warning -> medium     info -> low

The ``routing_key`` (32 characters) is a credential: it never appears in the envelope. Only
``details.routing_key_sha256`` (the first 12 hex digits of its SHA-256) is kept, and a
``dedup_key`` that contains the routing key is replaced by ``pd-<hash>`` of itself, the same way
on every event, so acknowledge and resolve still match.

Site: ``payload.custom_details[site_label]``, else ``site_map[routing_key]``, else the default.
Labels: ``source``, ``component``, ``group`` and ``class`` from the payload (cut to 256
characters). Evidence: the first ``http(s)`` link's ``href``, else ``client_url``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig
from axtrace.intake.sources._common import (
    MAX_DETECTOR_CHARS,
    MAX_LABEL_CHARS,
    clip,
    derived_key,
    identity,
    join,
    make_envelope,
    need_obj,
    need_str,
    opt_list,
    opt_obj,
    opt_str,
    parse_time,
    pick_site,
    present,
    show,
    title,
    url,
)

ACTIONS = {"trigger": "fire", "acknowledge": "acknowledge", "resolve": "resolve"}
SEVERITY = {"critical": "critical", "error": "high", "warning": "medium", "info": "low"}
ROUTING_KEY_CHARS = 32
LABEL_FIELDS = ("source", "component", "group", "class")
EXTRA_DETAILS = ("client", "client_url", "links", "images")


def parse(body: object, config: SourceConfig) -> list[AlertEnvelope]:
    """The one envelope of a PagerDuty Events API v2 event."""
    event = need_obj(body, "body")
    routing_key = _routing_key(event)
    try:
        return [_envelope(event, routing_key, config)]
    except ParseError as exc:  # a refusal must not echo the key, not even a part of it
        if _shows_part_of(routing_key, f"{exc.field} {exc.message}"):
            raise ParseError("contains the routing key", field="body") from None
        raise


def _envelope(event: dict[str, Any], routing_key: str, config: SourceConfig) -> AlertEnvelope:
    event_action = _event_action(event)
    payload = _payload(event, event_action)
    key = _key(event, event_action, routing_key, payload)
    summary = opt_str(payload.get("summary"), "payload.summary")
    fields = {
        "title": title(summary, fallback=f"PagerDuty {event_action} {key}"),
        "detector": clip(opt_str(event.get("client"), "client"), MAX_DETECTOR_CHARS),
        "labels": _labels(payload),
        "details": _details(event, event_action, routing_key, payload),
    }
    return make_envelope(
        "",
        source="pagerduty",
        action=ACTIONS[event_action],
        site=_site(payload, routing_key, config),
        key=key,
        severity=_severity(payload, event_action),
        evidence_url=_evidence(event, routing_key),
        detected_at=parse_time(payload.get("timestamp"), "payload.timestamp"),
        **_redact(fields, routing_key),
    )


def routing_key_hash(routing_key: str) -> str:
    """The short, one-way fingerprint of a routing key that AxTrace may store."""
    return hashlib.sha256(routing_key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _routing_key(event: dict[str, Any]) -> str:
    value = event.get("routing_key")
    if not isinstance(value, str) or not value:
        raise ParseError("is missing or not a string", field="routing_key")
    if len(value) != ROUTING_KEY_CHARS:  # never echo the key: it is a credential
        message = f"length is incorrect (should be {ROUTING_KEY_CHARS} characters)"
        raise ParseError(message, field="routing_key")
    return value


def _event_action(event: dict[str, Any]) -> str:
    action = opt_str(event.get("event_action"), "event_action")
    if action not in ACTIONS:
        message = f"must be trigger, acknowledge or resolve; got {show(action)}"
        raise ParseError(message, field="event_action")
    return action


def _payload(event: dict[str, Any], event_action: str) -> dict[str, Any]:
    if event_action != "trigger":
        return opt_obj(event.get("payload"), "payload")
    payload = need_obj(event.get("payload"), "payload")
    for name in ("summary", "source", "severity"):
        need_str(payload.get(name), join("payload", name))
    return payload


def _severity(payload: dict[str, Any], event_action: str) -> str:
    value = opt_str(payload.get("severity"), "payload.severity")
    if value is None and event_action != "trigger":
        return "high"
    if value not in SEVERITY:
        message = f"must be critical, error, warning or info; got {show(value)}"
        raise ParseError(message, field="payload.severity")
    return SEVERITY[value]


def _key(
    event: dict[str, Any], event_action: str, routing_key: str, payload: dict[str, Any]
) -> str:
    dedup_key = opt_str(event.get("dedup_key"), "dedup_key")
    if dedup_key is None and event_action != "trigger":
        raise ParseError(f"is required to {event_action} an alert", field="dedup_key")
    if dedup_key is None:
        parts = [payload.get(name) for name in ("summary", *LABEL_FIELDS)]
        return derived_key("pd", routing_key_hash(routing_key), parts)
    if routing_key in dedup_key:
        return derived_key("pd", dedup_key)
    return identity(dedup_key, "dedup_key")


def _site(payload: dict[str, Any], routing_key: str, config: SourceConfig) -> str | None:
    details = payload.get("custom_details")
    name = config.site_label
    named = details.get(name) if isinstance(details, dict) else None
    candidates = [
        (join("payload", "custom_details", name), named),
        ("config.site_map", config.site_map.get(routing_key)),
    ]
    site = pick_site(candidates, config)
    if site is not None and routing_key in site:
        raise ParseError("must not contain the routing key", field=candidates[0][0])
    return site


def _labels(payload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for name in LABEL_FIELDS:
        value = opt_str(payload.get(name), join("payload", name))
        if value is not None:
            labels[name] = value[:MAX_LABEL_CHARS]
    return labels


def _evidence(event: dict[str, Any], routing_key: str) -> str | None:
    links = opt_list(event.get("links"), "links")
    hrefs = [(link.get("href") if isinstance(link, dict) else None) for link in links]
    fields = [join("links", index, "href") for index in range(len(links))]
    for href, field in zip([*hrefs, event.get("client_url")], [*fields, "client_url"], strict=True):
        found = url(href, field)
        if found is not None and routing_key not in found:
            return found
    return None


def _details(
    event: dict[str, Any], event_action: str, routing_key: str, payload: dict[str, Any]
) -> dict[str, Any]:
    details = {
        "event_action": event_action,
        "routing_key_sha256": routing_key_hash(routing_key),
        "dedup_key_derived": opt_str(event.get("dedup_key"), "dedup_key") is None,
        **present(payload, "custom_details", "timestamp"),
        **present(event, *EXTRA_DETAILS),
    }
    redacted: dict[str, Any] = _redact(details, routing_key)
    return redacted


def _shows_part_of(secret: str, text: str, part: int = 8) -> bool:
    return any(secret[i : i + part] in text for i in range(len(secret) - part + 1))


def _redact(value: Any, secret: str) -> Any:
    """``value`` with any text containing ``secret`` replaced, however deep it sits."""
    if isinstance(value, str):
        return "[redacted]" if secret in value else value
    if isinstance(value, list):
        return [_redact(item, secret) for item in value]
    if isinstance(value, dict):
        return {_redact(name, secret): _redact(item, secret) for name, item in value.items()}
    return value
