"""Opsgenie create-alert API body (``POST /v2/alerts``): a landing zone for teams leaving Opsgenie.

``message`` (required) is the title; ``alias`` is the identity (``key``; Opsgenie allows 512
characters, so aliases over 255 are hashed stably); without an alias the key is
``og-<hash of the message>``, so the same message deduplicates. Every create-alert body fires.

Severity, from ``priority`` (Opsgenie's default is P3; any other value is refused, as Opsgenie
does):

    P1 -> critical     P2 -> high     P3 -> medium     P4, P5 -> low

Site: ``details[site_label]``, else the default. Labels: ``details`` (Opsgenie's custom
properties, ``str -> str``). Detector: ``source``. Kept in ``details``: ``description``,
``responders``, ``visibleTo``, ``actions``, ``tags``, ``entity``, ``source``, ``user``, ``note``.
"""

from __future__ import annotations

from typing import Any

from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig
from axtrace.intake.sources._common import (
    MAX_DETECTOR_CHARS,
    clean_labels,
    clip,
    derived_key,
    identity,
    join,
    make_envelope,
    need_obj,
    need_str,
    opt_str,
    pick_site,
    present,
    show,
    title,
)

PRIORITY = {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low", "P5": "low"}
DETAILS = ("description", "responders", "visibleTo", "actions", "tags", "entity", "source",
           "user", "note")


def parse(body: object, config: SourceConfig) -> list[AlertEnvelope]:
    """The one envelope of an Opsgenie create-alert body."""
    alert = need_obj(body, "body")
    message = need_str(alert.get("message"), "message")
    labels = clean_labels(alert.get("details"), "details")
    name = config.site_label
    return [
        make_envelope(
            "",
            source="opsgenie",
            site=pick_site([(join("details", name), labels.get(name))], config),
            key=_key(alert, message),
            severity=_severity(alert),
            title=title(message, fallback="Opsgenie alert"),
            detector=clip(opt_str(alert.get("source"), "source"), MAX_DETECTOR_CHARS),
            labels=labels,
            details=present(alert, *DETAILS),
        )
    ]


def _key(alert: dict[str, Any], message: str) -> str:
    alias = opt_str(alert.get("alias"), "alias")
    if alias is None:
        return derived_key("og", message)
    return identity(alias, "alias", hash_long=True)


def _severity(alert: dict[str, Any]) -> str:
    priority = opt_str(alert.get("priority"), "priority") or "P3"
    if priority.strip().upper() not in PRIORITY:
        message = f"must be one of P1, P2, P3, P4, P5; got {show(priority)}"
        raise ParseError(message, field="priority")
    return PRIORITY[priority.strip().upper()]
