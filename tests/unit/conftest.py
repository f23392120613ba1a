from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.events.worker import EventsWorker
from prefect.testing.fixtures import (  # noqa: F401  (pytest finds fixtures by name)
    asserting_events_worker,
)

from axtrace.ledger.db import upgrade
from axtrace.settings import get_settings


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated SQLite ledger that this process's settings point at."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade(url)
    yield url
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def events(request: pytest.FixtureRequest) -> Iterator[EventsWorker]:
    """Prefect events emitted by the code under test, captured by Prefect's own test client."""
    worker: EventsWorker = request.getfixturevalue("asserting_events_worker")
    yield worker
    worker.drain()
    client = getattr(worker, "_client", None)
    if client is not None:
        client.events = []


POLICY = {
    "site": "berlin-plant",
    "owning_team": "Berlin line quality",
    "escalation_chain": [
        {"name": "Line lead", "responders": ["anna", "ben"], "acknowledge_within": "10m"},
        {"name": "Shift manager", "responders": ["clara", "anna"], "acknowledge_within": "20m"},
        {"responders": ["dora"], "acknowledge_within": "1h"},
    ],
    "resolve_within": "4h",
    "severity_overrides": {"critical": {"acknowledge_within": "2m", "resolve_within": "1h"}},
}
