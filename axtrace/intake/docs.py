"""OpenAPI documentation of the intake paths: what each source sends, with an example."""

from __future__ import annotations

from typing import Any

_DOCS = {
    "native": "AxTrace's own JSON: one alert. `key` is its identity at the detector (a repeat "
              "while open counts, starts nothing); `site` must be a deployed site.",
    "alertmanager": "Prometheus Alertmanager webhook (version 4). Each alert of the batch is "
                    "its own occurrence (fingerprint); `status: resolved` closes it. The site "
                    "comes from the `site` label (configurable).",
    "grafana": "Grafana unified alerting webhook (version 1), Alertmanager-shaped; optional "
               "HMAC header `X-Grafana-Alerting-Signature`.",
    "pagerduty": "PagerDuty Events API v2 (`/v2/enqueue` body): trigger / acknowledge / "
                 "resolve by `dedup_key`. Answers like PagerDuty. `routing_key` is never "
                 "stored in clear; the site comes from `payload.custom_details.site` or a "
                 "routing-key mapping.",
    "azure-monitor": "Azure Monitor common alert schema (incl. smart detection and dynamic "
                     "thresholds); `essentials.alertId` is the identity; `monitorCondition` "
                     "Fired / Resolved; the site from `customProperties.site`.",
    "opsgenie": "Opsgenie create-alert body; `alias` is the identity; the site from "
                "`details.site`.",
}

_EXAMPLES: dict[str, dict[str, Any]] = {
    "native": {"site": "berlin-plant", "key": "press3-crack", "severity": "critical",
               "title": "Surface crack on press line 3", "detector": "vision-qa",
               "detector_version": "2.4.1", "confidence": 0.93,
               "evidence_url": "https://minio.example/frames/press3/123.jpg",
               "labels": {"line": "3"}, "detected_at": "2026-11-26T08:15:00Z"},
    "alertmanager": {
        "version": "4", "groupKey": "{}:{alertname=\"FreezerWarm\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "axtrace", "groupLabels": {"alertname": "FreezerWarm"},
        "commonLabels": {"alertname": "FreezerWarm", "site": "lyon-store"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": "firing",
                    "labels": {"alertname": "FreezerWarm", "site": "lyon-store",
                               "severity": "critical", "freezer": "4"},
                    "annotations": {"summary": "Freezer 4 warming: -12 C and rising"},
                    "startsAt": "2026-11-26T08:10:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=freezer_temp",
                    "fingerprint": "c4f1b2a9d0e3f7a1"}]},
    "grafana": {
        "receiver": "axtrace", "status": "firing", "orgId": 1, "version": "1",
        "title": "[FIRING:1] Drift", "state": "alerting", "message": "Forecast drift",
        "groupKey": "{}", "truncatedAlerts": 0, "externalURL": "http://grafana:3000/",
        "groupLabels": {}, "commonLabels": {"site": "austin-region"}, "commonAnnotations": {},
        "alerts": [{"status": "firing",
                    "labels": {"alertname": "ForecastDrift", "site": "austin-region"},
                    "annotations": {"summary": "MAPE 31% (limit 15%)"},
                    "startsAt": "2026-11-26T07:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://grafana:3000/alerting/grafana/abc/view",
                    "fingerprint": "0f9e8d7c6b5a4321", "silenceURL": "", "dashboardURL": "",
                    "panelURL": "", "values": {"A": 31.2}, "valueString": "A=31.2"}]},
    "pagerduty": {"routing_key": "R0123456789ABCDEF0123456789ABCDE", "event_action": "trigger",
                  "dedup_key": "model-42-drift",
                  "payload": {"summary": "Model 42 anomaly score 0.97", "source": "anomaly-svc",
                              "severity": "error", "custom_details": {"site": "berlin-plant"}}},
    "azure-monitor": {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {"essentials": {
            "alertId": "/subscriptions/1/providers/Microsoft.AlertsManagement/alerts/abc",
            "alertRule": "Failure Anomalies - shop", "severity": "Sev1",
            "signalType": "Log", "monitorCondition": "Fired",
            "monitoringService": "Application Insights",
            "alertTargetIDs": ["/subscriptions/1/resourcegroups/rg/providers/x/components/shop"],
            "firedDateTime": "2026-11-26T08:00:00Z", "description": "Smart detection",
            "essentialsVersion": "1.0", "alertContextVersion": "1.0"},
            "alertContext": {}, "customProperties": {"site": "lyon-store"}}},
    "opsgenie": {"message": "Checkout model latency anomaly", "alias": "checkout-latency",
                 "description": "p99 latency 2.3 s", "priority": "P2",
                 "details": {"site": "austin-region"}, "source": "anomaly-detector"},
}

INTAKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A delivery seen before: nothing changed; the first answer again."},
    202: {"description": "Stored durably: `{id, alerts: [{id, site, key, status}], delivery}`"
                         "; status is new, repeat, resolving or ignored."},
    400: {"description": "The body is not UTF-8 JSON (`loc` names `body`), nests more than "
                         "32 deep (`loc` names the field), or a header value is over 4096 "
                         "characters (`webhook-id`: 255; `loc` names the header)."},
    401: {"description": "A credential is missing or wrong (`loc` names the header)."},
    404: {"description": "The alert names a site that is not deployed (`loc` names it), or "
                         "a native resolve matches no open alert of its own (`loc`: `key`)."},
    409: {"description": "The `webhook-id` was used before for a different body, or a "
                         "resolve naming no site has its key open at several (`loc`: `site`)."},
    413: {"description": "The body is over 1 MiB, or carries more than 1000 alerts "
                         "(`loc` names `alerts`; AXTRACE_MAX_ALERTS_PER_DELIVERY)."},
    422: {"description": "A field is invalid (`loc` names it, `msg` says why)."},
    503: {"description": "The ledger or Prefect is unavailable: send it again later."},
}


def intake_docs(source: str) -> str:
    return _DOCS.get(source, f"Alerts from {source}.")


def intake_openapi(source: str) -> dict[str, Any]:
    """A request body section with an example; the body is read raw to record rejections."""
    example = _EXAMPLES.get(source, {})
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object"}, "examples": {source: {"value": example}}}}}}

