"""For any JSON value a sender may post, every parser and the registry either return valid
envelopes or raise ``ParseError``: never another exception, never an envelope that breaks the
shared rules, never a PagerDuty routing key in clear."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axtrace.intake.envelope import AlertEnvelope, ParseError
from axtrace.intake.registry import SOURCES, parse
from axtrace.intake.sources._common import MAX_LABEL_CHARS, MAX_LABELS
from axtrace.vocabulary import SITE_SLUG_RE as SITE_SLUG

from .support import CONFIG, ROUTING_KEY, broken, json_values

PROPERTY = settings(max_examples=200, deadline=None, database=None)


def outcome(source: str, body: object) -> list[AlertEnvelope] | ParseError:
    try:
        return SOURCES[source](body, CONFIG)
    except ParseError as exc:
        return exc


def assert_sound(result: list[AlertEnvelope] | ParseError, source: str) -> None:
    if isinstance(result, ParseError):
        assert result.field
        assert len(result.field) < 1000
        (result.field + result.message).encode("utf-8")  # safe to send back
        if source == "pagerduty":
            assert ROUTING_KEY[:8] not in result.field + result.message
        return
    assert isinstance(result, list)
    for envelope in result:
        assert isinstance(envelope, AlertEnvelope)
        assert envelope.site is None or SITE_SLUG.fullmatch(envelope.site)
        assert len(envelope.labels) <= MAX_LABELS
        assert all(len(k) <= MAX_LABEL_CHARS >= len(v) for k, v in envelope.labels.items())
        assert 1 <= len(envelope.title) <= 500
        dumped = envelope.model_dump_json()  # storable as it is
        if source == "pagerduty":
            assert ROUTING_KEY not in dumped


@pytest.mark.parametrize("source", sorted(SOURCES))
@PROPERTY
@given(data=st.data())
def test_any_json_value_parses_or_raises_parse_error(source: str, data: st.DataObject) -> None:
    """Half of the bodies are arbitrary JSON, half real examples with one part broken (which
    reach much deeper into the parser than random objects do)."""
    body = data.draw(json_values | broken(source), label="body")
    assert_sound(outcome(source, body), source)


@PROPERTY
@given(source=st.sampled_from(sorted(SOURCES)) | st.text(max_size=15), body=json_values)
def test_the_registry_parses_or_raises_parse_error(source: str, body: object) -> None:
    try:
        result: list[AlertEnvelope] | ParseError = parse(source, body, CONFIG)
    except ParseError as exc:
        result = exc
    assert_sound(result, source)
