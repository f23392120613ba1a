"""Schemathesis against the API's own OpenAPI schema: no generated request gets a 5xx.

Schemathesis' pytest plugin does not run on this pytest, so each operation's Hypothesis
strategy is driven directly; the result is the same: generated requests, real HTTP calls.
Open, and closed with credentials. Not stateful: the schema declares no links, and
schemathesis' inferred ones would add little over a trace test.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from axtrace.testing import Stack
from tests.reliability.conftest import GUARD_TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_no_request_generated_from_the_schema_gets_a_server_error(stack: Stack) -> None:
    assert fuzzed(stack, lambda _operation: {}) == []


def test_with_credentials_no_generated_request_gets_a_server_error_or_a_401(
    guarded: Stack,
) -> None:
    """Closed (the intake token set, tokens created): each operation is called with the
    credential it needs, so the generated requests get past authentication."""
    responder = guarded.axtrace("tokens", "create", "alice").stdout.strip()

    def credential(operation: Any) -> dict[str, str]:
        intake = operation.method.upper() == "POST" and "{alert_id}" not in operation.path
        return {"authorization": f"Bearer {GUARD_TOKEN if intake else responder}"}

    assert fuzzed(guarded, credential, refused={401}) == []


def fuzzed(stack: Stack, headers: Callable[[Any], dict[str, str]],
           refused: Collection[int] = ()) -> list[str]:
    """Generated requests to every operation, with ``headers(operation)``: those answered
    5xx (or a status in ``refused``)."""
    schema = schemathesis.openapi.from_url(f"{stack.http.base_url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "every intake path, the alert reads and the actions"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def check(case: Any) -> None:
            response = case.call(timeout=120, headers=headers(case.operation))
            if response.status_code >= 500 or response.status_code in refused:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code}: {response.text[:200]}")

        check()
    return failures
