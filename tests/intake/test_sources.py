"""What each source parser does with the oddities of real senders, and what it refuses.

Every refusal is a ``ParseError`` whose ``field`` is the dotted path of the culprit in the body.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig
from axtrace.intake.registry import parse

from .support import CONFIG, ROUTING_KEY, load


def refused(source: str, body: object, config: SourceConfig = CONFIG) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse(source, body, config)
    return caught.value


def one(source: str, body: object, config: SourceConfig = CONFIG) -> AlertEnvelope:
    envelopes = parse(source, body, config)
    assert len(envelopes) == 1
    return envelopes[0]


def changed(name: str, path: str, value: Any) -> Any:
    """The example ``name`` with the value at dotted ``path`` replaced (``...`` deletes it)."""
    document = copy.deepcopy(load(name))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = document
    for step in parents:
        target = target[step]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return document


# --- native ---------------------------------------------------------------------------------


def test_native_key_defaults_to_a_stable_hash_of_detector_and_title() -> None:
    body = {"title": "Torque drift", "detector": "torque-drift"}
    key = one("native", body).key
    assert key.startswith("native-")
    assert one("native", dict(body)).key == key
    assert one("native", {**body, "detector": "other"}).key != key


def test_native_labels_become_text_and_nulls_are_dropped() -> None:
    body = {"title": "t", "labels": {"n": 3, "f": 0.5, "b": False, "gone": None}}
    assert one("native", body).labels == {"n": "3", "f": "0.5", "b": "false"}


def test_native_site_falls_back_to_the_site_label_then_the_default() -> None:
    config = SourceConfig(default_site="hq")
    assert one("native", {"title": "t", "labels": {"site": "lyon-plant"}}, config).site == (
        "lyon-plant"
    )
    assert one("native", {"title": "t"}, config).site == "hq"
    assert one("native", {"title": "t"}).site is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("just text", "body"),
        ({}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 7}, "title"),
        ({"title": "t", "severity": "urgent"}, "severity"),
        ({"title": "t", "action": "close"}, "action"),
        ({"title": "t", "confidence": 1.5}, "confidence"),
        ({"title": "t", "confidence": True}, "confidence"),
        ({"title": "t", "confidence": float("nan")}, "confidence"),
        ({"title": "t", "evidence_url": "javascript:alert(1)"}, "evidence_url"),
        ({"title": "t", "key": "k" * 256}, "key"),
        ({"title": "t", "detector": "d" * 201}, "detector"),
        ({"title": "t", "detected_at": "yesterday"}, "detected_at"),
        ({"title": "t", "details": []}, "details"),
        ({"alerts": [{"title": "ok"}, {"title": ""}]}, "alerts.1.title"),
        ({"alerts": {"title": "t"}}, "alerts"),
    ],
)
def test_native_refuses_what_its_format_does_not_allow(body: object, field: str) -> None:
    assert refused("native", body).field == field


def test_native_severity_and_action_ignore_case() -> None:
    envelope = one("native", {"title": "t", "severity": "LOW", "action": "Resolve"})
    assert (envelope.severity, envelope.action) == ("low", "resolve")


# --- times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-05-06T07:30:26.739266876Z", "2025-05-06T07:30:26.739266+00:00"),
        ("2015-07-17T08:42:58.315+0000", "2015-07-17T08:42:58.315000+00:00"),
        ("2025-05-06T07:30:26-05:30", "2025-05-06T07:30:26-05:30"),
        ("2025-05-06 07:30:26", "2025-05-06T07:30:26+00:00"),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_times_are_read_as_rfc_3339_with_utc_when_no_offset(
    text: str, expected: str | None
) -> None:
    detected = one("native", {"title": "t", "detected_at": text}).detected_at
    assert (detected.isoformat() if detected else None) == expected


@pytest.mark.parametrize("text", ["2025-13-01T00:00:00Z", "2025-05-06T25:00:00Z",
                                  "2025-05-06T07:30:26+99:00", "0000-01-01T00:00:00Z", "now"])
def test_impossible_times_are_refused(text: str) -> None:
    assert refused("native", {"title": "t", "detected_at": text}).field == "detected_at"


# --- alertmanager ---------------------------------------------------------------------------


def test_alertmanager_without_fingerprint_keys_by_the_sorted_labels() -> None:
    body = load("alertmanager_legacy_no_fingerprint.json")
    key = one("alertmanager", body).key
    labels = body["alerts"][0]["labels"]
    body["alerts"][0]["labels"] = dict(reversed(list(labels.items())))
    assert one("alertmanager", body).key == key
    body["alerts"][0]["labels"]["instance"] = "other:9090"
    assert one("alertmanager", body).key != key


def test_alertmanager_zero_end_time_means_still_firing() -> None:
    envelope = parse("alertmanager", load("alertmanager_firing.json"), CONFIG)[0]
    assert envelope.details["ends_at"] is None
    resolved = one("alertmanager", load("alertmanager_resolved.json"))
    assert resolved.details["ends_at"] == "2025-05-06T08:02:11.021000+00:00"


def test_alertmanager_records_truncated_alerts_and_ignores_unknown_fields() -> None:
    envelope = one("alertmanager", load("alertmanager_truncated_new_fields.json"))
    assert envelope.details["truncatedAlerts"] == 5
    assert "mutedBy" not in envelope.details


def test_alertmanager_alert_without_status_takes_the_group_status() -> None:
    body = changed("alertmanager_resolved.json", "alerts.0.status", ...)
    assert one("alertmanager", body).action == "resolve"


def test_alertmanager_site_falls_back_to_common_labels() -> None:
    body = changed("alertmanager_resolved.json", "alerts.0.labels.site", ...)
    assert one("alertmanager", body).site == "berlin-plant"


@pytest.mark.parametrize(
    ("label", "expected"),
    [("critical", "critical"), ("page", "critical"), ("error", "high"), ("High", "high"),
     ("warning", "medium"), ("WARN", "medium"), ("info", "low"), ("none", "low"),
     ("disaster", "high"), (None, "high")],
)
def test_alertmanager_severity_label_map(label: str | None, expected: str) -> None:
    body = changed("alertmanager_resolved.json", "alerts.0.labels.severity", label)
    assert one("alertmanager", body).severity == expected


@pytest.mark.parametrize(
    ("url", "kept"),
    [("javascript:alert(1)", False), ("https://p.example.com/" + "q" * 2000, False),
     ("HTTPS://P.EXAMPLE.COM/graph", True)],
)
def test_alertmanager_keeps_only_http_evidence_urls_of_sane_length(url: str, kept: bool) -> None:
    body = changed("alertmanager_resolved.json", "alerts.0.generatorURL", url)
    assert (one("alertmanager", body).evidence_url == url) is kept


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("alerts", ..., "alerts"),
        ("alerts.0.status", "pending", "alerts.0.status"),
        ("alerts.0.labels", ["a"], "alerts.0.labels"),
        ("alerts.0.labels.site", "Berlin Plant", "alerts.0.labels.site"),
        ("alerts.0.annotations.summary", {"text": "x"}, "alerts.0.annotations.summary"),
        ("alerts.0.startsAt", "06/05/2025", "alerts.0.startsAt"),
        ("alerts.0.fingerprint", 12345, "alerts.0.fingerprint"),
        ("commonLabels", "site=berlin", "commonLabels"),
    ],
)
def test_alertmanager_refusals_name_the_field(path: str, value: Any, field: str) -> None:
    assert refused("alertmanager", changed("alertmanager_resolved.json", path, value)).field == (
        field
    )


# --- grafana --------------------------------------------------------------------------------


def test_grafana_evidence_prefers_panel_then_dashboard_then_rule_url() -> None:
    name = "grafana_new_fields.json"
    assert one("grafana", load(name)).evidence_url.endswith("viewPanel=7")  # type: ignore[union-attr]
    body = changed(name, "alerts.0.panelURL", "")
    assert one("grafana", body).evidence_url == "https://grafana.example.com/d/ai-models?orgId=3"
    body["alerts"][0]["dashboardURL"] = ""
    assert one("grafana", body).evidence_url == load(name)["alerts"][0]["generatorURL"]


def test_grafana_keeps_its_values_and_image_in_details() -> None:
    envelope = one("grafana", load("grafana_new_fields.json"))
    assert envelope.details["values"] == {"A": 0.57, "C": 1}
    assert envelope.details["imageURL"].endswith("3a9c.png")
    assert envelope.details["orgId"] == 3
    assert "enrichments" not in envelope.details


# --- pagerduty ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["pagerduty_trigger.json", "pagerduty_trigger_without_dedup_key.json",
     "pagerduty_acknowledge.json", "pagerduty_resolve.json"],
)
def test_pagerduty_routing_key_never_appears_in_the_envelope(name: str) -> None:
    envelope = one("pagerduty", load(name))
    assert ROUTING_KEY not in envelope.model_dump_json()
    assert envelope.details["routing_key_sha256"] == "47746dbfe444"


def test_pagerduty_routing_key_inside_other_fields_is_redacted() -> None:
    body = changed("pagerduty_trigger.json", "payload.custom_details.leak", f"key={ROUTING_KEY}")
    body["payload"]["summary"] = f"sent with {ROUTING_KEY}"
    body["links"][0]["href"] = f"https://pd.example.com/{ROUTING_KEY}"
    envelope = one("pagerduty", body)
    assert ROUTING_KEY not in envelope.model_dump_json()
    assert envelope.details["custom_details"]["leak"] == "[redacted]"


def test_pagerduty_dedup_key_holding_the_routing_key_is_replaced_the_same_way_each_time() -> None:
    trigger = changed("pagerduty_trigger.json", "dedup_key", ROUTING_KEY)
    resolve = changed("pagerduty_resolve.json", "dedup_key", ROUTING_KEY)
    key = one("pagerduty", trigger).key
    assert key.startswith("pd-")
    assert ROUTING_KEY not in key
    assert one("pagerduty", resolve).key == key


def test_pagerduty_trigger_without_dedup_key_gets_a_stable_key_per_service() -> None:
    body = load("pagerduty_trigger_without_dedup_key.json")
    envelope = one("pagerduty", body)
    assert envelope.details["dedup_key_derived"] is True
    assert one("pagerduty", load("pagerduty_trigger_without_dedup_key.json")).key == envelope.key
    other_service = {**body, "routing_key": "f" * 32}
    assert one("pagerduty", other_service, SourceConfig()).key != envelope.key


def test_pagerduty_site_prefers_custom_details_over_the_routing_key_map() -> None:
    body = changed("pagerduty_trigger.json", "payload.custom_details.site", "lyon-plant")
    assert one("pagerduty", body).site == "lyon-plant"
    assert one("pagerduty", load("pagerduty_resolve.json"), SourceConfig()).site is None


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("error", "high"), ("warning", "medium"), ("info", "low")],
)
def test_pagerduty_severity_map(severity: str, expected: str) -> None:
    body = changed("pagerduty_trigger.json", "payload.severity", severity)
    assert one("pagerduty", body).severity == expected


@pytest.mark.parametrize(
    ("name", "path", "value", "field"),
    [
        ("pagerduty_trigger.json", "routing_key", ..., "routing_key"),
        ("pagerduty_trigger.json", "routing_key", "too-short", "routing_key"),
        ("pagerduty_trigger.json", "event_action", "snooze", "event_action"),
        ("pagerduty_trigger.json", "payload", ..., "payload"),
        ("pagerduty_trigger.json", "payload.summary", "", "payload.summary"),
        ("pagerduty_trigger.json", "payload.source", ..., "payload.source"),
        ("pagerduty_trigger.json", "payload.severity", "fatal", "payload.severity"),
        ("pagerduty_trigger.json", "payload.timestamp", "17/07/2015", "payload.timestamp"),
        ("pagerduty_trigger.json", "dedup_key", "d" * 256, "dedup_key"),
        ("pagerduty_acknowledge.json", "dedup_key", ..., "dedup_key"),
        ("pagerduty_resolve.json", "dedup_key", "  ", "dedup_key"),
    ],
)
def test_pagerduty_refusals_name_the_field(name: str, path: str, value: Any, field: str) -> None:
    assert refused("pagerduty", changed(name, path, value)).field == field


def test_pagerduty_refusal_of_a_routing_key_does_not_echo_it() -> None:
    key = "0123456789abcdef0123456789abcdef0"  # 33 characters
    error = refused("pagerduty", changed("pagerduty_trigger.json", "routing_key", key))
    assert key not in error.message


# --- azure monitor --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("Sev0", "critical"), ("Sev1", "high"), ("Sev2", "medium"), ("Sev3", "low"),
     ("Sev4", "low"), ("Sev9", "high")],
)
def test_azure_severity_map(severity: str, expected: str) -> None:
    body = changed("azure_monitor_metric_resolved.json", "data.essentials.severity", severity)
    assert one("azure-monitor", body).severity == expected


def test_azure_dynamic_threshold_is_recognised_by_its_criterion_alone() -> None:
    body = changed("azure_monitor_dynamic_threshold.json", "data.alertContext.conditionType", ...)
    assert one("azure-monitor", body).detector == "azure:Platform dynamic threshold"


def test_azure_smart_detection_is_recognised_by_its_context_alone() -> None:
    body = changed(
        "azure_monitor_smart_detection.json",
        "data.essentials.monitoringService",
        "Application Insights",
    )
    envelope = one("azure-monitor", body)
    assert envelope.detector == "azure:Smart Detection/DependencyPerformanceDegradationDetector"
    assert envelope.details["DetectedValue"] == "0.45 sec"


def test_azure_fired_and_resolved_share_the_alert_id_as_key() -> None:
    fired = changed("azure_monitor_metric_resolved.json", "data.essentials.monitorCondition",
                    "Fired")
    resolved = load("azure_monitor_metric_resolved.json")
    assert one("azure-monitor", fired).key == one("azure-monitor", resolved).key
    assert one("azure-monitor", fired).action == "fire"


def test_azure_over_long_alert_id_is_hashed_stably() -> None:
    long_id = "/subscriptions/" + "x" * 300
    body = changed("azure_monitor_metric_resolved.json", "data.essentials.alertId", long_id)
    key = one("azure-monitor", body).key
    assert key.startswith("sha256-")
    assert one("azure-monitor", copy.deepcopy(body)).key == key


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("schemaId", "AzureMonitorMetricAlert", "schemaId"),
        ("data.essentials", ..., "data.essentials"),
        ("data.essentials.alertId", ..., "data.essentials.alertId"),
        ("data.essentials.monitorCondition", "Flapping", "data.essentials.monitorCondition"),
        ("data.essentials.firedDateTime", 1553263104, "data.essentials.firedDateTime"),
        ("data.customProperties", {"site": "../../etc"}, "data.customProperties.site"),
    ],
)
def test_azure_refusals_name_the_field(path: str, value: Any, field: str) -> None:
    body = changed("azure_monitor_metric_resolved.json", path, value)
    assert refused("azure-monitor", body).field == field


# --- opsgenie -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "expected"),
    [("P1", "critical"), ("P2", "high"), ("P3", "medium"), ("p4", "low"), ("P5", "low"),
     (None, "medium")],
)
def test_opsgenie_priority_map(priority: str | None, expected: str) -> None:
    body = changed("opsgenie_create.json", "priority", priority)
    assert one("opsgenie", body).severity == expected


def test_opsgenie_alias_longer_than_255_is_hashed_stably() -> None:
    body = changed("opsgenie_create.json", "alias", "a" * 512)
    key = one("opsgenie", body).key
    assert key.startswith("sha256-")
    assert one("opsgenie", copy.deepcopy(body)).key == key


def test_opsgenie_without_alias_deduplicates_by_message() -> None:
    first = one("opsgenie", {"message": "Retraining failed"})
    assert one("opsgenie", {"message": "Retraining failed", "priority": "P1"}).key == first.key


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("message", ..., "message"),
        ("message", ["x"], "message"),
        ("priority", "P0", "priority"),
        ("alias", 42, "alias"),
        ("details", {"site": "lyon-plant", "nested": {"a": 1}}, "details.nested"),
        ("details", {"site": "{{ site }}"}, "details.site"),
    ],
)
def test_opsgenie_refusals_name_the_field(path: str, value: Any, field: str) -> None:
    assert refused("opsgenie", changed("opsgenie_create.json", path, value)).field == field


@pytest.mark.parametrize(
    ("path", "value"),
    [("payload.custom_details.site", ROUTING_KEY), ("payload.severity", ROUTING_KEY),
     ("payload.timestamp", f"at {ROUTING_KEY}"), ("payload.summary", 7),
     ("payload.custom_details.site", "X" * 60 + ROUTING_KEY)],
)
def test_pagerduty_refusals_never_echo_the_routing_key(path: str, value: str) -> None:
    error = refused("pagerduty", changed("pagerduty_trigger.json", path, value))
    assert ROUTING_KEY[:8] not in f"{error.field} {error.message}"
