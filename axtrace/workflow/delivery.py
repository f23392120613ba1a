"""What the responders are told and how it reaches them: the notification text (the policy's
template or the standard text) and its delivery through the policy's notification block.

Sends, but writes nothing to the ledger: :func:`axtrace.workflow.steps.notify` and the
reminders in :mod:`axtrace.workflow.answers` record what :func:`deliver` returns.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from axtrace import outbound, ownership
from axtrace.ledger.models import Alert, Status
from axtrace.outbound import Notification
from axtrace.text import printable
from axtrace.workflow.transitions import summary

logger = logging.getLogger("axtrace.workflow")


def deliver(alert: Alert) -> dict[str, Any]:
    """Send the notification for the alert's current level (I/O, before the transaction that
    records it, so a replay may send it again: at least once); what the step records."""
    pinned = cast(dict[str, Any], alert.policy)
    level = alert.level
    people = ownership.level_people(pinned, level, alert.on_call)
    channel = pinned.get("notification_block")
    message = notification(alert, people)
    sent = _send(message, _subject(alert, pinned), channel)
    return {
        "level": level, "level_name": ownership.level_name(pinned, level),
        "responders": people, "channel": channel or "ledger", **sent, "text": message.text,
        **({"template_error": message.error} if message.error else {}),
        **({"truncated": True} if message.truncated else {}),
    }


def notification(alert: Alert, people: list[str]) -> Notification:
    """The text for the responders: the policy's template, or the standard text when it
    fails (rendered even without a notification block, so a broken template shows in the
    trace). Never raises: see :func:`axtrace.outbound.compose`."""
    pinned = alert.policy or {}
    acknowledged = alert.status == Status.ACKNOWLEDGED
    due = alert.resolve_deadline if acknowledged else alert.ack_deadline
    deadline = due.isoformat() if due else "none"
    return outbound.compose(
        pinned.get("notification_template"),
        {"alert": summary(alert) | {"id": alert.id, "title": alert.title,
                                    "severity": alert.severity},
         "level": alert.level, "responders": people, "deadline": deadline,
         "action": "resolve" if acknowledged else "acknowledge",
         "run_url": outbound.run_url(alert.flow_run_id)},
        allow_mass_mentions=bool(pinned.get("allow_mass_mentions", False)),
    )


def _subject(alert: Alert, pinned: dict[str, Any]) -> str:
    subject = printable(f"[AxTrace] {alert.site}: {alert.title} ({alert.severity})")
    return outbound.mentions_as_allowed(subject, bool(pinned.get("allow_mass_mentions")))


def _send(message: Notification, subject: str, channel: str | None) -> dict[str, Any]:
    """Send through the notification block ``channel``, retried as
    :func:`axtrace.outbound.deliver` does; what the step records (``delivered``, ``attempts``,
    ``error``). Never raises: a failed notification must not stop the escalation clock. Without
    a block nothing leaves AxTrace: the ledger step and the event are the notification."""
    from prefect.blocks.core import Block

    from axtrace.settings import get_settings

    if not channel:
        return {"delivered": False}
    try:
        block: Any = Block.load(channel)
    except Exception as exc:
        logger.warning("notification block %s could not be loaded: %s", channel, exc)
        return {"delivered": False, "attempts": 0,
                "error": f"cannot load {channel}: {type(exc).__name__}"}
    sent = outbound.deliver(block, body=message.body, subject=subject,
                            allow_private=get_settings().allow_private_webhooks)
    if not sent.delivered:
        logger.warning("notification through %s failed after %d attempt(s): %s", channel,
                       sent.attempts, sent.error)
    return {"delivered": sent.delivered, "attempts": sent.attempts,
            **({"error": sent.error} if sent.error else {})}
