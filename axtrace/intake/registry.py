"""The explicit registry of alert sources: the name in ``POST /v1/alerts/{source}`` -> parser.

Every parser takes the already-decoded JSON body (any JSON value) and the source's
``SourceConfig``, and returns envelopes or raises ``ParseError`` naming the field. :func:`parse`
looks the source up, bounds the body first (at most ``MAX_DEPTH`` deep: 400; at most
``max_alerts`` alerts per delivery, ``AXTRACE_MAX_ALERTS_PER_DELIVERY``, 1000 by default: 413
naming ``alerts``), and checks what comes back once more against the rules every source
shares (site slug, labels ``str -> str`` within their limits); see :mod:`.sources._common`.
"""

from __future__ import annotations

from collections.abc import Callable

from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig, TooMany
from axtrace.intake.sources import (
    alertmanager,
    azure_monitor,
    grafana,
    native,
    opsgenie,
    pagerduty,
)
from axtrace.intake.sources._common import check_depth, check_slug, clean_labels, show
from axtrace.settings import MAX_ALERTS_PER_DELIVERY

Parser = Callable[[object, SourceConfig], list[AlertEnvelope]]

SOURCES: dict[str, Parser] = {
    "native": native.parse,
    "alertmanager": alertmanager.parse,
    "grafana": grafana.parse,
    "pagerduty": pagerduty.parse,
    "azure-monitor": azure_monitor.parse,
    "opsgenie": opsgenie.parse,
}

RESOLVES_EARLY = frozenset({"alertmanager", "grafana", "pagerduty", "azure-monitor", "opsgenie"})
"""Sources whose resolve may arrive before its firing, and is then kept for it (bound to the
source, and to the site when the resolve names one). Their senders send several alerts per
delivery or fire and resolve from different processes, and do not send again after a 4xx.
``native`` is AxTrace's own API: its senders are told (404 naming ``key``) that a resolve
matched no open alert of theirs."""


def parse(
    source: str, body: object, config: SourceConfig, *,
    max_alerts: int = MAX_ALERTS_PER_DELIVERY,
) -> list[AlertEnvelope]:
    """The envelopes of ``body`` as sent by ``source``; ``ParseError`` if it cannot be used."""
    parser = SOURCES.get(source)
    if parser is None:
        known = ", ".join(SOURCES)
        raise ParseError(f"unknown source {show(source)}; known: {known}", field="source")
    check_depth(body)
    listed = body.get("alerts") if isinstance(body, dict) else None
    if isinstance(listed, list):  # refused before any of them is parsed
        _check_count(len(listed), max_alerts)
    envelopes = parser(body, config)
    _check_count(len(envelopes), max_alerts)
    for envelope in envelopes:
        _check(envelope)
    return envelopes


def _check_count(count: int, limit: int) -> None:
    if count > limit:
        raise TooMany(f"{count} alerts in one delivery; at most {limit} (send them in "
                      "several deliveries, or raise AXTRACE_MAX_ALERTS_PER_DELIVERY)",
                      field="alerts")


def _check(envelope: AlertEnvelope) -> None:
    """The shared rules, once more, for whatever a parser returned (a backstop: the parsers
    already check them where they can name the exact field of the body)."""
    if envelope.site is not None:
        check_slug(envelope.site, "site")
    clean_labels(envelope.labels, "labels")
