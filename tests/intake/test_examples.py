"""Every example payload in ``tests/data/payloads`` parses to exactly the envelopes below.

Each row is ``(site, key, action, severity, title, starts_at)`` of one envelope, in order.
Derived keys are pinned on purpose: they must not change between releases, or repeats of an
alert sent before an upgrade would no longer match the open occurrence.
"""

from __future__ import annotations

import pytest

from axtrace.intake.registry import parse

from .support import CONFIG, load, payload_names, source_of

AM_URL = "http://prometheus.example.com:9090/graph?g0.expr=model_psi+%3E+0.3&g0.tab=1"
AZURE = "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.AlertsManagement"

EXPECTED: dict[str, list[tuple[str | None, str, str, str, str, str | None]]] = {
    "native_single.json": [
        ("berlin-plant", "line-3/weld-seam-anomaly", "fire", "critical",
         "Weld seam anomaly on line 3", None),
    ],
    "native_batch.json": [
        ("lyon-plant", "native-2102928c7d4ca38fe7f87cb2a4eac6df", "fire", "medium",
         "Torque drift on screwdriver 7", None),
        ("berlin-plant", "line-3/weld-seam-anomaly", "resolve", "high",
         "Weld seam anomaly on line 3", None),
    ],
    "alertmanager_firing.json": [
        ("berlin-plant", "c6eadffa33fcdf37", "fire", "critical",
         "Prediction drift of seam-vision above 0.3 at berlin-plant",
         "2025-05-06T07:30:26.739266+00:00"),
        ("lyon-plant", "bc97ff14869b13e3", "fire", "critical",
         "Prediction drift of seam-vision above 0.3 at lyon-plant",
         "2025-05-06T07:31:02.100000+02:00"),
    ],
    "alertmanager_resolved.json": [
        ("berlin-plant", "c6eadffa33fcdf37", "resolve", "critical",
         "Prediction drift of seam-vision above 0.3 at berlin-plant",
         "2025-05-06T07:30:26.739266+00:00"),
    ],
    "alertmanager_legacy_no_fingerprint.json": [
        (None, "labels-13ed88a6e827fcd08575351190559b0e", "fire", "high",
         "InferenceLatencyHigh", "2018-08-03T09:52:26.739266+02:00"),
    ],
    "alertmanager_truncated_new_fields.json": [
        ("lyon-plant", "0f4ad0e0a7c2b9e1", "fire", "medium", "DefectRateAnomaly",
         "2025-05-06T11:00:00+00:00"),
    ],
    "alertmanager_watchdog.json": [  # heartbeats, not alerts (axtrace.heartbeats)
        ("berlin-plant", "e6c2b0a9d1f0e4b2", "heartbeat", "low", "Watchdog",
         "2025-05-06T06:00:00.118000+00:00"),
        ("berlin-plant", "a41f7c3e95d20b18", "heartbeat", "low", "Watchdog",
         "2025-05-06T06:00:00.118000+00:00"),
    ],
    "grafana_firing.json": [
        ("berlin-plant", "c6eadffa33fcdf37", "fire", "high", "Scrap rate above 4 % on line 3",
         "2021-10-12T09:51:03.157076+02:00"),
        ("lyon-plant", "bc97ff14869b13e3", "fire", "high",
         "This alert was triggered for zone eu-1", "2021-10-12T09:56:03.157076+02:00"),
    ],
    "grafana_resolved.json": [
        ("berlin-plant", "c6eadffa33fcdf37", "resolve", "high",
         "Scrap rate above 4 % on line 3", "2021-10-12T09:51:03.157076+02:00"),
    ],
    "grafana_new_fields.json": [
        ("lyon-plant", "8a1f0c3e9d2b7a46", "fire", "low",
         "Mean confidence of label-reader below 0.6", "2025-05-06T12:00:00+00:00"),
    ],
    "pagerduty_trigger.json": [
        ("berlin-plant", "srv01/mysql/replication-lag", "fire", "high",
         "Replication lag of the feature store above 30 s", None),
    ],
    "pagerduty_trigger_without_dedup_key.json": [
        ("berlin-plant", "pd-a3edd8891f1ea997ea809738c68cd1ce", "fire", "low",
         "Example alert on host1.example.com", None),
    ],
    "pagerduty_acknowledge.json": [
        ("berlin-plant", "srv01/mysql/replication-lag", "acknowledge", "high",
         "PagerDuty acknowledge srv01/mysql/replication-lag", None),
    ],
    "pagerduty_resolve.json": [
        ("berlin-plant", "srv01/mysql/replication-lag", "resolve", "high",
         "PagerDuty resolve srv01/mysql/replication-lag", None),
    ],
    "azure_monitor_metric_resolved.json": [
        ("berlin-plant", f"{AZURE}/alerts/b9569717-bc32-442f-add5-83a997729330", "resolve",
         "low", "WCUS-R2-Gen2", "2019-03-22T13:58:24.371321+00:00"),
    ],
    "azure_monitor_smart_detection.json": [
        ("lyon-plant", f"{AZURE}/alerts/12345678-1234-1234-1234-1234567890ab", "fire", "medium",
         "Dependency Latency Degradation - inference-api: "
         "A degradation in the dependency duration over the last 24 hours",
         "2021-10-28T19:09:09.111508+00:00"),
    ],
    "azure_monitor_dynamic_threshold.json": [
        ("berlin-plant", f"{AZURE}/alerts/0f3c1d2e-4b5a-6978-8a9b-0c1d2e3f4a5b", "fire", "high",
         "Transactions anomaly - scoring storage", "2021-12-15T01:19:30.123456+00:00"),
    ],
    "azure_monitor_log_search_v2.json": [
        ("lyon-plant", f"{AZURE}/alerts/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e", "fire",
         "critical", "Rejected parts by the vision model", "2021-11-16T11:47:41.472823+00:00"),
    ],
    "opsgenie_create.json": [
        ("lyon-plant", "label-reader/line-2/low-confidence", "fire", "high",
         "Label reader confidence below 0.6 on line 2", None),
    ],
    "opsgenie_without_alias.json": [
        ("berlin-plant", "og-4ef10d220c2c13d61ee570687c333154", "fire", "low",
         "Nightly retraining of seam-vision failed", None),
    ],
}


def test_every_example_payload_has_expectations() -> None:
    assert sorted(EXPECTED) == payload_names()


@pytest.mark.parametrize("name", payload_names())
def test_example_parses_to_the_expected_envelopes(name: str) -> None:
    envelopes = parse(source_of(name), load(name), CONFIG)
    found = [
        (e.site, e.key, e.action, e.severity, e.title,
         e.starts_at.isoformat() if e.starts_at else None)
        for e in envelopes
    ]
    assert found == EXPECTED[name]
    assert {e.source for e in envelopes} == {source_of(name)}


@pytest.mark.parametrize("name", payload_names())
def test_example_parses_the_same_every_time(name: str) -> None:
    first = parse(source_of(name), load(name), CONFIG)
    assert parse(source_of(name), load(name), CONFIG) == first


@pytest.mark.parametrize(
    ("name", "detector", "detector_version", "evidence_url"),
    [
        ("native_single.json", "seam-vision", "2.4.1",
         "https://evidence.example.com/berlin/line-3/frames/88123.png"),
        ("alertmanager_firing.json", "seam-vision", "2.4.1", AM_URL),
        ("alertmanager_legacy_no_fingerprint.json", "inference-gateway", None,
         "http://example.com:9090/graph?g0.expr=go_memstats_alloc_bytes+%3E+0&g0.tab=1"),
        ("alertmanager_truncated_new_fields.json", "defect-rate-isolation-forest", "0.9", None),
        ("alertmanager_watchdog.json", "alertmanager", None, None),
        ("grafana_firing.json", None, None, "https://grafana.example.com/alerting/1afz29v7z/edit"),
        ("grafana_new_fields.json", "label-reader", "5.0.2",
         "https://grafana.example.com/d/ai-models?orgId=3&viewPanel=7"),
        ("pagerduty_trigger.json", "Feature store monitor", None,
         "https://monitoring.example.com/mysql/db-r2"),
        ("azure_monitor_smart_detection.json",
         "azure:Smart Detection/DependencyPerformanceDegradationDetector", None, None),
        ("azure_monitor_dynamic_threshold.json", "azure:Platform dynamic threshold", None, None),
        ("azure_monitor_metric_resolved.json", "azure:Platform", None, None),
        ("azure_monitor_log_search_v2.json", "azure:Log Alerts V2", None,
         "https://portal.azure.com#@aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa/blade/"
         "Microsoft_Azure_Monitoring_Logs/LogsBlade/source/Alerts.EmailLinks/q/abc-filtered"),
        ("opsgenie_create.json", "model-watchdog", None, None),
    ],
)
def test_example_names_its_detector_and_evidence(
    name: str, detector: str | None, detector_version: str | None, evidence_url: str | None
) -> None:
    envelope = parse(source_of(name), load(name), CONFIG)[0]
    assert (envelope.detector, envelope.detector_version, envelope.evidence_url) == (
        detector, detector_version, evidence_url,
    )
