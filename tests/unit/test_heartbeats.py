"""Specification of the dead-man switch's pure parts: when a detector is silent, what its alert
says, which heartbeats are refused, and how the sites file and the policy take ``detectors``.
No server, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from axtrace import ownership
from axtrace.errors import InvalidInput, Malformed
from axtrace.heartbeats import Watched, envelope, parse_body, silence, silence_key, unknown
from axtrace.sitefile import check, read
from axtrace_blocks import OwnershipPolicy

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
FIVE_MIN = timedelta(minutes=5)


def watched(heard: datetime = T0, alert: int | None = None) -> Watched:
    return Watched("berlin-plant", "seam-vision", FIVE_MIN, heard, alert)


def test_a_detector_heard_within_its_window_is_not_silent() -> None:
    assert silence(watched(), T0 + timedelta(minutes=4, seconds=59)) is None


def test_silence_begins_only_past_the_window_and_says_since_when_and_how_late() -> None:
    assert silence(watched(), T0 + FIVE_MIN) is None  # exactly at the window: not yet
    found = silence(watched(), T0 + FIVE_MIN + timedelta(seconds=7))

    assert found is not None
    assert (found.site, found.detector, found.since, found.window) == (
        "berlin-plant", "seam-vision", T0, FIVE_MIN)
    assert found.late_by == timedelta(seconds=7)


def test_a_silence_already_raised_raises_nothing_more_however_long_it_lasts() -> None:
    for late in (timedelta(seconds=1), timedelta(hours=1), timedelta(days=30)):
        assert silence(watched(alert=41), T0 + FIVE_MIN + late) is None


def test_the_alert_of_a_silence_names_detector_and_site_and_is_keyed_per_silence() -> None:
    found = silence(watched(), T0 + timedelta(minutes=9))
    assert found is not None
    raised = envelope(found)

    assert (raised.source, raised.action, raised.site, raised.detector) == (
        "heartbeat", "fire", "berlin-plant", "seam-vision")
    assert raised.title == "detector seam-vision silent at berlin-plant"
    assert raised.key == "silent:seam-vision:2026-12-03T10:00:00+00:00"
    assert raised.detected_at == T0 + FIVE_MIN
    assert raised.labels == {"heartbeat_within": "300s"}
    later = silence(watched(T0 + timedelta(hours=1)), T0 + timedelta(hours=2))
    assert later is not None
    assert envelope(later).key != raised.key == silence_key("seam-vision", T0)


KNOWN = {"berlin-plant": {"seam-vision": FIVE_MIN, "alertmanager": FIVE_MIN}, "lyon": {}}


def test_a_heartbeat_for_a_watched_detector_is_taken() -> None:
    assert unknown("berlin-plant", "seam-vision", KNOWN) is None


def test_a_heartbeat_for_an_unknown_site_is_404_naming_the_site() -> None:
    problem = unknown("paris", "seam-vision", KNOWN)

    assert problem is not None
    assert (problem.status_code, problem.field) == (404, "site")
    assert "unknown site 'paris'" in problem.message


def test_a_heartbeat_for_a_detector_the_site_does_not_watch_is_404_naming_it() -> None:
    problem = unknown("berlin-plant", "seam-vison", KNOWN)
    none = unknown("lyon", "seam-vision", KNOWN)

    assert problem is not None
    assert none is not None
    assert (problem.status_code, problem.field) == (404, "detector")
    assert problem.message == (
        "site 'berlin-plant' watches no detector 'seam-vison' (its detectors: alertmanager, "
        "seam-vision); add it to the site's policy.detectors")
    assert "(its detectors: none)" in none.message


@pytest.mark.parametrize(("raw", "field"), [
    (b'{"detector": "seam-vision"}', "site"),
    (b'{"site": "Berlin Plant", "detector": "seam-vision"}', "site"),
    (b'{"site": "berlin-plant"}', "detector"),
    (b'{"site": "berlin-plant", "detector": ""}', "detector"),
    (b'{"site": "berlin-plant", "detector": 7}', "detector"),
    (b'{"site": "berlin-plant", "detector": "x", "detectr": "y"}', "detectr"),
    (b'["berlin-plant", "seam-vision"]', "body"),
])
def test_a_bad_heartbeat_body_is_422_naming_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_body(raw)

    assert (refused.value.status_code, refused.value.field) == (422, field)


def test_a_heartbeat_body_that_is_not_json_is_400_naming_the_body() -> None:
    with pytest.raises(Malformed) as refused:
        parse_body(b"site=berlin-plant")

    assert (refused.value.status_code, refused.value.field) == (400, "body")


def test_a_good_heartbeat_body_is_read() -> None:
    body = parse_body(b'{"site": "berlin-plant", "detector": "seam-vision"}')
    assert (body.site, body.detector) == ("berlin-plant", "seam-vision")


# --------------------------------------------------------------------------- the policy

SITES = """\
sites:
  berlin-plant:
    policy:
      owning_team: Berlin line quality
      escalation_chain:
        - responders: [anna]
          acknowledge_within: 15m
      resolve_within: 4h
      detectors:
        - name: seam-vision
          heartbeat_within: 10m
        - name: alertmanager
          heartbeat_within: PT2M
"""


def test_detectors_are_read_from_the_sites_file_in_the_house_duration_syntax() -> None:
    checked = read(SITES, "sites.yaml")

    assert checked.problems == []
    detectors = checked.specs[0].policy.detectors
    assert [(d.name, d.heartbeat_within) for d in detectors] == [
        ("seam-vision", timedelta(minutes=10)), ("alertmanager", timedelta(minutes=2))]


@pytest.mark.parametrize(("old", "new", "where", "text"), [
    ("heartbeat_within: 10m", "heartbeat_withn: 10m", "policy.detectors.0.heartbeat_withn",
     "unknown field; did you mean 'heartbeat_within'?"),
    ("heartbeat_within: 10m", "heartbeat_within: 0s", "policy.detectors.0.heartbeat_within",
     "heartbeat_within must be longer than zero"),
    ("heartbeat_within: 10m", "heartbeat_within: soon", "policy.detectors.0.heartbeat_within",
     "soon"),
    ("- name: alertmanager", "- name: seam-vision", "policy.detectors",
     "detector 'seam-vision' is listed twice"),
    ("- name: alertmanager", "- name: ' '", "policy.detectors.1.name",
     "must not be empty"),
])
def test_a_bad_detector_is_an_error_naming_the_site_and_the_field(
    old: str, new: str, where: str, text: str,
) -> None:
    problems = check(SITES.replace(old, new), "sites.yaml")
    found = next(p for p in problems if p.field == where)  # a misspelled one is also missing

    assert {p.severity for p in problems} == {"error"}
    assert found.site == "berlin-plant"
    assert found.message.startswith(f"site 'berlin-plant': {where}: ")
    assert text in found.message


def test_a_policy_without_detectors_keeps_its_version() -> None:
    policy = OwnershipPolicy.model_validate({
        "site": "berlin-plant", "owning_team": "Q", "resolve_within": "4h",
        "escalation_chain": [{"responders": ["anna"], "acknowledge_within": "15m"}]})
    pinned = ownership.snapshot(policy)

    assert "detectors" not in pinned
    watching = policy.model_copy(update={"detectors": read(SITES, "s").specs[0].policy.detectors})
    assert ownership.version(ownership.snapshot(watching)) != ownership.version(pinned)
