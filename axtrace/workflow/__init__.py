"""The standard response to one alert at one site: the steps of ``respond-to-alert``.

The flow body is a loop over the ledger: read where the alert stands, do the next step, repeat.
Waits for people suspend the run (the process exits); on resume Prefect runs the flow again
from the top, the loop reads the ledger and arrives at the same wait, whose pause key
(``<phase>-<wait_seq>``) Prefect has already seen, so it returns the answer given. Each answer
is taken in one transaction that also advances ``wait_seq``, so an answer is never taken twice.

Deadlines are ours: the sweeper resumes a waiting run with an empty answer when
:func:`wake_at` says so (an acknowledge deadline, a resolve deadline, a reminder, the end of
a maintenance window), and :func:`deadline_step` decides what that wake does: escalate, mark
the alert ignored (no one acknowledged) or overdue (no one resolved), remind the current
level, or release an alert a maintenance window suppressed (:mod:`axtrace.maintenance`).

The package, by layer (each module's docstring says what it must not do):

- :mod:`~axtrace.workflow.transitions`: pure decisions over an alert (what is due, when to wake).
- :mod:`~axtrace.workflow.records`: the data the layers pass (``StepRecord``, ``Answer``).
- :mod:`~axtrace.workflow.steps`: the ledger transactions of assign, notify, resolve, close.
- :mod:`~axtrace.workflow.answers`: the transaction that takes an answer or a wake.
- :mod:`~axtrace.workflow.delivery`: the notification text and its sending.
- :mod:`~axtrace.workflow.prefect_io`: forms, run labels, the artifact, the suspensions.
- :mod:`~axtrace.workflow.run`: the flow body and its task table keyed by phase.

The workflow version is :func:`axtrace.version.workflow_version`.
"""

from axtrace.version import workflow_version
from axtrace.workflow.answers import refusal, take_answer
from axtrace.workflow.delivery import deliver, notification
from axtrace.workflow.prefect_io import (
    BACKSTOP,
    answer_form,
    artifact_markdown,
    publish_artifact,
    site_policy,
    wait_for_answer,
    wait_for_release,
)
from axtrace.workflow.records import Answer, ManualAlert, StepRecord
from axtrace.workflow.run import FLOW_ENTRYPOINT, FLOW_NAME, respond
from axtrace.workflow.steps import (
    assign,
    calendars,
    close,
    load_alert,
    notify,
    record_alert,
    resolve_at_source,
)
from axtrace.workflow.transitions import (
    Phase,
    deadline_step,
    decide,
    next_reminder,
    pause_key,
    summary,
    suppressed_reason,
    wake_at,
)

__all__ = [
    "BACKSTOP", "FLOW_ENTRYPOINT", "FLOW_NAME", "Answer", "ManualAlert", "Phase", "StepRecord",
    "answer_form", "artifact_markdown", "assign", "calendars", "close", "deadline_step",
    "decide", "deliver", "load_alert", "next_reminder", "notification", "notify",
    "pause_key", "publish_artifact", "record_alert", "refusal", "resolve_at_source",
    "respond", "site_policy", "summary", "suppressed_reason", "take_answer", "wait_for_answer",
    "wait_for_release", "wake_at", "workflow_version",
]
