"""Prefect Block types of AxTrace.

Prefect imports this package through the ``prefect.collections`` entry point on every block
lookup, worker start and server start, so it must stay cheap: Prefect, pydantic and
``axtrace.vocabulary`` (standard library only).
"""

from axtrace.vocabulary import SEVERITIES, Severity
from axtrace_blocks.email import EmailNotification
from axtrace_blocks.maintenance import MaintenanceWindow
from axtrace_blocks.policy import DeadlineOverride, Detector, EscalationLevel, OwnershipPolicy

__all__ = [
    "SEVERITIES",
    "DeadlineOverride",
    "Detector",
    "EmailNotification",
    "EscalationLevel",
    "MaintenanceWindow",
    "OwnershipPolicy",
    "Severity",
]
