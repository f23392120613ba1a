"""The registry: which sources exist, and the rules every source's envelopes obey (site slugs,
labels as bounded ``str -> str``, titles of at most 500 characters)."""

from __future__ import annotations

import pytest

from axtrace.intake import registry
from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig
from axtrace.intake.registry import SOURCES, parse

from .support import CONFIG, SOURCES_BY_PREFIX


def test_the_registry_lists_exactly_the_documented_sources() -> None:
    assert sorted(SOURCES) == sorted(SOURCES_BY_PREFIX.values())


@pytest.mark.parametrize("source", ["", "Alertmanager", "../native", "prometheus", "native "])
def test_an_unknown_source_is_refused_naming_the_source_field(source: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(source, {"title": "t"}, CONFIG)
    assert caught.value.field == "source"
    assert "alertmanager" in caught.value.message


@pytest.mark.parametrize(
    "site",
    [
        "../etc/passwd",
        "berlin/plant",
        "Berlin",
        "berlin plant",
        "berlin'; DROP TABLE alert;--",
        '"berlin"',
        "{{ site }}",
        "${site}",
        "-berlin",
        "b" * 64,
        "berlin\n",
        "berlín",
        7,
        ["berlin"],
    ],
)
def test_a_site_that_is_not_a_slug_is_refused_naming_the_field(site: object) -> None:
    with pytest.raises(ParseError) as caught:
        parse("native", {"title": "t", "site": site}, CONFIG)
    assert caught.value.field == "site"
    assert "slug" in caught.value.message


def test_a_refused_site_is_shown_short_and_quoted() -> None:
    site = "X" * 5000
    with pytest.raises(ParseError) as caught:
        parse("native", {"title": "t", "site": site}, CONFIG)
    shown = caught.value.message.split("got ", 1)[1]
    assert shown.startswith("'XXX")
    assert len(shown) <= 80


@pytest.mark.parametrize("site", ["a", "berlin-plant", "0", "plant-7", "b" * 63])
def test_slugs_are_accepted(site: str) -> None:
    assert parse("native", {"title": "t", "site": site}, CONFIG)[0].site == site


def test_an_invalid_configured_default_site_is_refused_naming_the_setting() -> None:
    with pytest.raises(ParseError) as caught:
        parse("native", {"title": "t"}, SourceConfig(default_site="Berlin Plant"))
    assert caught.value.field == "config.default_site"


def test_labels_are_capped_at_64() -> None:
    labels = {f"l{i}": "v" for i in range(64)}
    assert len(parse("native", {"title": "t", "labels": labels}, CONFIG)[0].labels) == 64
    with pytest.raises(ParseError) as caught:
        parse("native", {"title": "t", "labels": {**labels, "one-more": "v"}}, CONFIG)
    assert caught.value.field == "labels"


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ({"k": "v" * 257}, "labels.k"),
        ({"k" * 257: "v"}, "labels"),
        ({"": "v"}, "labels"),
        ({"k": {"nested": "v"}}, "labels.k"),
        ({"k": ["v"]}, "labels.k"),
    ],
)
def test_labels_beyond_their_limits_or_nested_are_refused(
    labels: dict[str, object], field: str
) -> None:
    with pytest.raises(ParseError) as caught:
        parse("native", {"title": "t", "labels": labels}, CONFIG)
    assert caught.value.field == field


def test_labels_at_their_limits_are_kept() -> None:
    labels = {"k" * 256: "v" * 256}
    assert parse("native", {"title": "t", "labels": labels}, CONFIG)[0].labels == labels


def test_titles_are_cut_to_500_characters() -> None:
    envelope = parse("opsgenie", {"message": "m" * 600}, CONFIG)[0]
    assert envelope.title == "m" * 500


def test_the_registry_checks_what_any_parser_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    def sloppy(body: object, config: SourceConfig) -> list[AlertEnvelope]:
        return [AlertEnvelope(source="sloppy", key="k", title="t", site="Not A Slug")]

    monkeypatch.setitem(registry.SOURCES, "sloppy", sloppy)
    with pytest.raises(ParseError) as caught:
        parse("sloppy", {}, CONFIG)
    assert caught.value.field == "site"
