"""Shared by the intake tests: the example payloads, a routing config, and Hypothesis
strategies for any JSON value and for real payloads with one part broken."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from axtrace.intake.envelope import SourceConfig

PAYLOADS = Path(__file__).parents[1] / "data" / "payloads"
ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
CONFIG = SourceConfig(site_map={ROUTING_KEY: "berlin-plant"})
SOURCES_BY_PREFIX = {
    "native": "native",
    "alertmanager": "alertmanager",
    "grafana": "grafana",
    "pagerduty": "pagerduty",
    "azure_monitor": "azure-monitor",
    "opsgenie": "opsgenie",
}


def payload_names() -> list[str]:
    return sorted(path.name for path in PAYLOADS.glob("*.json"))


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def source_of(name: str) -> str:
    """The registry name of the source an example file belongs to (by its file-name prefix)."""
    prefix = next(p for p in SOURCES_BY_PREFIX if name.startswith(p + "_"))
    return SOURCES_BY_PREFIX[prefix]


@functools.cache
def _examples(source: str) -> tuple[str, ...]:
    return tuple(json.dumps(load(name)) for name in payload_names() if source_of(name) == source)


def examples(source: str) -> list[Any]:
    """Fresh copies of the example payloads of ``source``."""
    return [json.loads(text) for text in _examples(source)]


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(_keys(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(item) for item in value))
    return set()


# Field names the parsers look for, so random objects often hit a real code path.
KNOWN_KEYS = sorted(set().union(*(_keys(load(name)) for name in payload_names())))

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.text(st.characters(categories=["Cs", "Lu", "Nd"]), max_size=4)  # lone surrogates too
    | st.sampled_from(["firing", "resolved", "trigger", "resolve", "acknowledge", "Fired",
                       "Resolved", "P1", "Sev0", "critical", "berlin-plant", ROUTING_KEY,
                       "azureMonitorCommonAlertSchema", "0001-01-01T00:00:00Z",
                       "2025-05-06T07:30:26.739266876Z", "https://example.com/x"])
)
json_keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(json_keys, children, max_size=6),
    max_leaves=15,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for name, item in value.items():
            found += _paths(item, (*path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


@st.composite
def broken(draw: st.DrawFn, source: str) -> Any:
    """A real example of ``source`` with one value replaced by any JSON value, or removed."""
    document = json.loads(draw(st.sampled_from(_examples(source))))
    path = draw(st.sampled_from(_paths(document)))
    if not path:
        return draw(json_values)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return document
