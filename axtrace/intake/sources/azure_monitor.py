"""Azure Monitor common alert schema (``schemaId: azureMonitorCommonAlertSchema``).

``data.essentials.alertId`` is the identity (``key``; the same id comes with ``Fired`` and with
``Resolved``, so ids over 255 characters are hashed stably); ``monitorCondition`` ``Fired``
fires and ``Resolved`` resolves; ``firedDateTime`` is ``starts_at``. The title is the
``alertRule`` (with the ``DetectionSummary`` of smart detection alerts), else the description.

The detection kind goes into ``detector``:

- Application Insights smart detection (ML; ``monitoringService`` ``SmartDetector``, or an
  alert context with ``SmartDetectorId``/``DetectionSummary``):
  ``azure:Smart Detection/<SmartDetectorId>``;
- metric alerts with dynamic thresholds (ML baselines; ``conditionType``
  ``DynamicThresholdCriteria``, or a criterion of ``criterionType``
  ``DynamicThresholdCriterion``): ``azure:<monitoringService> dynamic threshold``, e.g.
  ``azure:Platform dynamic threshold``;
- anything else: ``azure:<monitoringService>``, e.g. ``azure:Log Alerts V2``.

Severity (``essentials.severity``; anything else is ``high``):

    Sev0 -> critical     Sev1 -> high     Sev2 -> medium     Sev3, Sev4 -> low

Site: ``customProperties[site_label]``, else ``alertContext.properties[site_label]`` (where log
search alerts V2 put custom properties), else the default. Labels: those custom properties.
Evidence: the log search results link of the first criterion, when there is one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig
from axtrace.intake.sources._common import (
    MAX_DETECTOR_CHARS,
    clean_labels,
    clip,
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
    severity,
    show,
    title,
    url,
)

SCHEMA_ID = "azureMonitorCommonAlertSchema"
SEVERITY = {"sev0": "critical", "sev1": "high", "sev2": "medium", "sev3": "low", "sev4": "low"}
ACTIONS = {"fired": "fire", "resolved": "resolve"}
ESSENTIAL_DETAILS = (
    "alertRule",
    "severity",
    "signalType",
    "monitorCondition",
    "monitoringService",
    "alertTargetIDs",
    "configurationItems",
    "originAlertId",
    "resolvedDateTime",
    "description",
    "essentialsVersion",
    "alertContextVersion",
)
SMART_DETAILS = ("SmartDetectorId", "SmartDetectorName", "DetectionSummary", "DetectedValue",
                 "NormalValue", "FormattedOccurrenceTime")
LINK_KEYS = ("linkToFilteredSearchResultsUI", "linkToSearchResultsUI")
ESSENTIALS = "data.essentials"
CONTEXT = "data.alertContext"


def parse(body: object, config: SourceConfig) -> list[AlertEnvelope]:
    """The one envelope of an Azure Monitor common-schema alert."""
    raw = need_obj(body, "body")
    schema = opt_str(raw.get("schemaId"), "schemaId")
    if schema != SCHEMA_ID:
        message = f"expected {SCHEMA_ID!r} (enable the common alert schema); got {show(schema)}"
        raise ParseError(message, field="schemaId")
    data = need_obj(raw.get("data"), "data")
    essentials = need_obj(data.get("essentials"), ESSENTIALS)
    context = opt_obj(data.get("alertContext"), CONTEXT)
    custom = _custom_properties(data, context)
    return [
        make_envelope(
            "",
            source="azure-monitor",
            action=_action(essentials),
            site=_site(custom, config),
            key=identity(_alert_id(essentials), join(ESSENTIALS, "alertId"), hash_long=True),
            severity=severity(_text(essentials, "severity"), SEVERITY),
            title=_title(essentials, context),
            detector=clip(_detector(essentials, context), MAX_DETECTOR_CHARS),
            evidence_url=_evidence(context),
            labels=custom[1],
            starts_at=_time(essentials, "firedDateTime"),
            details=_details(essentials, context),
        )
    ]


def _text(essentials: dict[str, Any], name: str) -> str | None:
    return opt_str(essentials.get(name), join(ESSENTIALS, name))


def _time(essentials: dict[str, Any], name: str) -> datetime | None:
    return parse_time(essentials.get(name), join(ESSENTIALS, name))


def _alert_id(essentials: dict[str, Any]) -> str:
    return need_str(essentials.get("alertId"), join(ESSENTIALS, "alertId"))


def _action(essentials: dict[str, Any]) -> str:
    condition = _text(essentials, "monitorCondition") or "Fired"
    if condition.lower() not in ACTIONS:
        message = f"must be Fired or Resolved; got {show(condition)}"
        raise ParseError(message, field=join(ESSENTIALS, "monitorCondition"))
    return ACTIONS[condition.lower()]


def _custom_properties(
    data: dict[str, Any], context: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    """Where the custom properties came from, and them as labels."""
    if data.get("customProperties") is not None:
        where, raw = "data.customProperties", data["customProperties"]
    else:
        where, raw = join(CONTEXT, "properties"), context.get("properties")
    return where, clean_labels(raw, where)


def _site(custom: tuple[str, dict[str, str]], config: SourceConfig) -> str | None:
    where, labels = custom
    name = config.site_label
    return pick_site([(join(where, name), labels.get(name))], config)


def _is_smart(essentials: dict[str, Any], context: dict[str, Any]) -> bool:
    service = essentials.get("monitoringService")
    return service == "SmartDetector" or any(
        name in context for name in ("SmartDetectorId", "DetectionSummary")
    )


def _criteria(context: dict[str, Any]) -> list[dict[str, Any]]:
    condition = opt_obj(context.get("condition"), join(CONTEXT, "condition"))
    found = opt_list(condition.get("allOf"), join(CONTEXT, "condition", "allOf"))
    return [item for item in found if isinstance(item, dict)]


def _is_dynamic(context: dict[str, Any]) -> bool:
    if context.get("conditionType") == "DynamicThresholdCriteria":
        return True
    return any(c.get("criterionType") == "DynamicThresholdCriterion" for c in _criteria(context))


def _detector(essentials: dict[str, Any], context: dict[str, Any]) -> str:
    service = _text(essentials, "monitoringService") or "unknown service"
    if _is_smart(essentials, context):
        detector_id = opt_str(context.get("SmartDetectorId"), join(CONTEXT, "SmartDetectorId"))
        return f"azure:Smart Detection/{detector_id}" if detector_id else "azure:Smart Detection"
    if _is_dynamic(context):
        return f"azure:{service} dynamic threshold"
    return f"azure:{service}"


def _title(essentials: dict[str, Any], context: dict[str, Any]) -> str:
    rule = _text(essentials, "alertRule")
    summary = opt_str(context.get("DetectionSummary"), join(CONTEXT, "DetectionSummary"))
    if rule and summary:
        rule = f"{rule}: {summary}"
    return title(rule, summary, _text(essentials, "description"), fallback="Azure Monitor alert")


def _evidence(context: dict[str, Any]) -> str | None:
    for criterion in _criteria(context)[:1]:
        for name in LINK_KEYS:
            found = url(criterion.get(name), join(CONTEXT, "condition", "allOf", 0, name))
            if found is not None:
                return found
    name = "LinkToFilteredSearchResultsUI"  # log search alerts of the older API
    return url(context.get(name), join(CONTEXT, name))


def _details(essentials: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    criteria = [
        present(c, "metricName", "metricNamespace", "operator", "threshold", "metricValue",
                "alertSensitivity", "criterionType", "timeAggregation", "searchQuery")
        for c in _criteria(context)
    ]
    return {
        **present(essentials, *ESSENTIAL_DETAILS),
        **present(context, "conditionType", *SMART_DETAILS),
        "criteria": criteria,
    }
