"""Prefect Block types of AxTrace.

Prefect imports this package through the ``prefect.collections`` entry point on every block
lookup, worker start and server start, so it must stay cheap: Prefect and pydantic only.
"""

from axtrace_blocks.policy import (
    SEVERITIES,
    DeadlineOverride,
    EscalationLevel,
    OwnershipPolicy,
    Severity,
)

__all__ = [
    "SEVERITIES",
    "DeadlineOverride",
    "EscalationLevel",
    "OwnershipPolicy",
    "Severity",
]
