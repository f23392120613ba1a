"""Schemathesis against the API's own OpenAPI schema: no generated request gets a 5xx.

Schemathesis' pytest plugin does not run on this pytest, so each operation's Hypothesis
strategy is driven directly; the result is the same: generated requests, real HTTP calls.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from axtrace.testing import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_no_request_generated_from_the_schema_gets_a_server_error(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.http.base_url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "every intake path, the alert reads and the actions"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def check(case: Any) -> None:
            response = case.call(timeout=120)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code}: {response.text[:200]}")

        check()
    assert failures == []
