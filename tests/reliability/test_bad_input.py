"""Hostile bodies get a clear 4xx naming the field, and nothing of them is stored as an alert."""

from __future__ import annotations

import json
import os

import pytest
from sqlmodel import Session, func, select

from axtrace.ledger.db import engine_for
from axtrace.ledger.models import Alert
from axtrace.testing import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def alert_count() -> int:
    with Session(engine_for(os.environ["AXTRACE_DATABASE_URL"])) as session:
        return int(session.exec(select(func.count()).select_from(Alert)).one())


@pytest.mark.parametrize("site", [
    "../etc/passwd", "alpha/../beta", "a\\b", "alpha'; DROP TABLE alert; --", '"quoted"',
    "{{ 7*7 }}", "{% raw %}", "<script>alert(1)</script>", "ALPHA", "al pha", "",
])
def test_hostile_site_names_are_refused_naming_the_site_field(stack: Stack, site: str) -> None:
    before = alert_count()
    answer = stack.http.post("/v1/alerts", json={"site": site, "title": "x"})
    assert answer.status_code in (404, 422), answer.text
    assert answer.json()["detail"][0]["loc"][-1] == "site"
    assert alert_count() == before


def test_deeply_nested_json_is_refused_as_a_bad_body(stack: Stack) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    answer = stack.http.post("/v1/alerts", content=deep.encode(),
                             headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text


def test_a_huge_label_map_is_refused_naming_the_labels(stack: Stack) -> None:
    labels = {f"label{i}": "v" for i in range(5000)}
    answer = stack.http.post("/v1/alerts", json={"site": "alpha", "title": "x",
                                                 "labels": labels})
    assert answer.status_code == 422
    assert "labels" in json.dumps(answer.json()["detail"][0]["loc"])


def test_a_title_with_markup_is_stored_as_text_and_returned_verbatim(stack: Stack) -> None:
    title = "<img src=x onerror=alert(1)> {{ config }} '; --"
    alert_id = stack.raise_alert("alpha", title, key=f"markup-{os.getpid()}")
    assert stack.alert(alert_id)["title"] == title
