"""Grafana unified alerting webhook (``version: "1"``): Alertmanager's shape plus Grafana's fields.

Everything in :mod:`.alertmanager` applies (one envelope per alert, fingerprint as key,
``startsAt``, firing/resolved, the same severity map from ``labels.severity``, the same site
rule). What Grafana adds: the evidence URL prefers ``panelURL``, then ``dashboardURL``, then
``generatorURL`` (empty strings, which Grafana sends for rules without a dashboard, are
skipped); ``values``, ``valueString``, ``silenceURL`` and ``imageURL`` of each alert and the
group's ``orgId``, ``title`` and ``state`` are kept in ``details``. Fields Grafana adds later are
ignored. Grafana's optional HMAC header is checked by
:func:`axtrace.intake.signatures.verify_grafana_hmac`, not here.
"""

from __future__ import annotations

from axtrace.intake.envelope import AlertEnvelope, SourceConfig
from axtrace.intake.sources.alertmanager import GROUP_DETAILS, Flavour, parse_group

FLAVOUR = Flavour(
    source="grafana",
    url_keys=("panelURL", "dashboardURL", "generatorURL"),
    alert_details=("values", "valueString", "silenceURL", "imageURL"),
    group_details=(*GROUP_DETAILS, "orgId", "title", "state"),
)


def parse(body: object, config: SourceConfig) -> list[AlertEnvelope]:
    """Envelopes for every alert of a Grafana webhook body."""
    return parse_group(body, config, FLAVOUR)
