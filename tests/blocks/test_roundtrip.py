"""Specification of an ``OwnershipPolicy`` stored on a real Prefect server: what an operator
saves is what AxTrace loads, by its own class and through Prefect's generic block lookup.

Needs the session fixture ``prefect_api_url`` (tests/conftest.py): a running Prefect server,
with ``PREFECT_API_URL`` pointing at it for this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.core import Block

from axtrace_blocks import DeadlineOverride, EscalationLevel, OwnershipPolicy

pytestmark = pytest.mark.integration

BLOCK_NAME = "roundtrip-site"


def make_policy(**changes: Any) -> OwnershipPolicy:
    data: dict[str, Any] = {
        "site": "roundtrip-site",
        "owning_team": "line-3-quality",
        "escalation_chain": [
            {"name": "Line lead", "responders": ["anna", "ben"], "acknowledge_within": "15m"},
            {"name": "Plant manager", "responders": ["carla"], "acknowledge_within": "PT1H"},
            {"name": "Site director", "responders": ["dora"], "acknowledge_within": 90},
        ],
        "resolve_within": "1d",
        "severity_overrides": {
            "critical": {"acknowledge_within": "5m", "resolve_within": "2h"},
            "low": {"resolve_within": "3d"},
        },
        "notification_block": "slack-webhook/berlin-ops",
    }
    data.update(changes)
    return OwnershipPolicy(**data)


def assert_same_policy(loaded: OwnershipPolicy, saved: OwnershipPolicy) -> None:
    assert loaded.site == saved.site
    assert loaded.owning_team == saved.owning_team
    assert loaded.escalation_chain == saved.escalation_chain
    assert loaded.resolve_within == saved.resolve_within
    assert loaded.severity_overrides == saved.severity_overrides
    assert loaded.notification_block == saved.notification_block


@pytest.fixture
def saved_policy(prefect_api_url: str) -> OwnershipPolicy:
    """A policy saved under ``BLOCK_NAME``, replacing whatever an earlier run left there."""
    policy = make_policy()
    policy.save(BLOCK_NAME, overwrite=True)
    return policy


def test_a_saved_policy_loads_back_by_its_class_with_the_same_chain_and_deadlines(
    saved_policy: OwnershipPolicy,
) -> None:
    loaded = OwnershipPolicy.load(BLOCK_NAME)

    assert isinstance(loaded, OwnershipPolicy)
    assert_same_policy(loaded, saved_policy)
    assert loaded.escalation_chain == [
        EscalationLevel(
            name="Line lead", responders=["anna", "ben"], acknowledge_within=timedelta(minutes=15)
        ),
        EscalationLevel(
            name="Plant manager", responders=["carla"], acknowledge_within=timedelta(hours=1)
        ),
        EscalationLevel(
            name="Site director", responders=["dora"], acknowledge_within=timedelta(seconds=90)
        ),
    ]
    assert loaded.resolve_within == timedelta(days=1)
    assert loaded.severity_overrides == {
        "critical": DeadlineOverride(
            acknowledge_within=timedelta(minutes=5), resolve_within=timedelta(hours=2)
        ),
        "low": DeadlineOverride(resolve_within=timedelta(days=3)),
    }


def test_a_saved_policy_loads_back_through_the_generic_block_lookup_by_type_slug(
    saved_policy: OwnershipPolicy,
) -> None:
    loaded = Block.load(f"axtrace-ownership-policy/{BLOCK_NAME}")

    assert isinstance(loaded, OwnershipPolicy)
    assert_same_policy(loaded, saved_policy)


_LOAD_WITHOUT_IMPORTING = """
import json, sys
from prefect.blocks.core import Block

assert "axtrace_blocks" not in sys.modules
block = Block.load(sys.argv[1])
print(json.dumps({
    "class": f"{type(block).__module__}.{type(block).__qualname__}",
    "data": block.model_dump(mode="json"),
}))
"""


def test_a_process_that_never_imports_axtrace_loads_the_policy_through_the_entry_point(
    saved_policy: OwnershipPolicy, prefect_api_url: str, tmp_path: Path
) -> None:
    """What a worker or another team's flow does: Prefect finds the class by the type slug via
    the ``prefect.collections`` entry point, without the caller importing ``axtrace_blocks``."""
    completed = subprocess.run(
        [sys.executable, "-c", _LOAD_WITHOUT_IMPORTING, f"axtrace-ownership-policy/{BLOCK_NAME}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PREFECT_API_URL": prefect_api_url},
    )

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["class"] == "axtrace_blocks.policy.OwnershipPolicy"
    assert_same_policy(OwnershipPolicy.model_validate(result["data"]), saved_policy)


def test_saving_again_with_overwrite_replaces_the_stored_policy(
    saved_policy: OwnershipPolicy,
) -> None:
    edited = make_policy(
        escalation_chain=[{"responders": ["erik"], "acknowledge_within": "10m"}],
        resolve_within="8h",
        severity_overrides={},
        notification_block=None,
    )
    edited.save(BLOCK_NAME, overwrite=True)

    loaded = OwnershipPolicy.load(BLOCK_NAME)

    assert isinstance(loaded, OwnershipPolicy)
    assert_same_policy(loaded, edited)
    assert loaded.escalation_chain == [
        EscalationLevel(responders=["erik"], acknowledge_within=timedelta(minutes=10))
    ]
    assert loaded.resolve_within == timedelta(hours=8)
    assert loaded.severity_overrides == {}
    assert loaded.notification_block is None
