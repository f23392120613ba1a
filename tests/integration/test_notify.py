"""Notifications that really leave: respond-to-alert runs on a real Prefect server send through
notification blocks saved in that server to loopback receivers, and the trace says what
happened (delivered, attempts, error), while the escalation clock runs on."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock, MattermostWebhook
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import Session

from axtrace import ownership, workflow
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for, upgrade
from axtrace.ledger.models import AlertCreate, utcnow
from axtrace.settings import get_settings
from axtrace.testing import Stack
from axtrace_blocks import EmailNotification, OwnershipPolicy
from tests.unit.conftest import POLICY, Mailbox, Receiver, receiving, smtp_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SITES = Path(__file__).parents[1] / "data" / "notify.yaml"
FAILS = {"kappa": 0, "mu": 2, "nu": -1}
"""How many posts each site's receiver answers 503 before 200 (-1: all of them)."""


def webhook(port: int) -> CustomWebhookNotificationBlock:
    return CustomWebhookNotificationBlock(
        name="ops", url=f"http://127.0.0.1:{port}/hook",
        json_data={"subject": "{{subject}}", "text": "{{body}}"})


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, Receiver]]:
    with receiving(FAILS["kappa"]) as kappa, receiving(FAILS["mu"]) as mu, \
            receiving(FAILS["nu"]) as nu:
        yield {"kappa": kappa, "mu": mu, "nu": nu}


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as found:
        yield found


@pytest.fixture(scope="module")
def notifying(receivers: dict[str, Receiver], mailbox: tuple[Mailbox, int]) -> Iterator[Stack]:
    """An AxTrace of its own (Prefect server, serving process, ledger) allowed to notify
    loopback addresses, with one notification block per site saved in its Prefect server: a
    Custom Webhook to each receiver, and an AxTrace Email to the SMTP server."""
    workdir = Path(tempfile.mkdtemp(prefix="axtrace-notify-"))
    with Stack.start(workdir, sites=SITES,
                     extra_env={"AXTRACE_ALLOW_PRIVATE_WEBHOOKS": "true"}) as stack:
        with temporary_settings({PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
            for site, receiver in receivers.items():
                webhook(receiver.port).save(f"{site}-hook", overwrite=True)
            EmailNotification(
                smtp_server="127.0.0.1", smtp_port=mailbox[1], smtp_type="INSECURE",
                email_from="axtrace@example.org", email_to=["omicron-ops@example.org"],
            ).save("omicron-mail", overwrite=True)
        yield stack


def notified(stack: Stack, alert_id: int, count: int = 1) -> list[dict[str, Any]]:
    """The first ``count`` ``notified`` steps of the alert, once there."""
    alert = stack.wait_for(
        alert_id, lambda a: sum(e["step"] == "notified" for e in a["trace"]) >= count,
        timeout=120, what=f"{count} notification(s)")
    return [e["detail"] for e in alert["trace"] if e["step"] == "notified"][:count]


def aware(text: str) -> datetime:
    found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def test_a_run_notifies_through_the_saved_webhook_block_what_the_responders_need(
    notifying: Stack, receivers: dict[str, Receiver],
) -> None:
    alert_id = notifying.raise_alert("kappa", "Label printer jammed", severity="high")
    detail = notified(notifying, alert_id)[0]
    alert = notifying.alert(alert_id)
    assert (detail["channel"], detail["delivered"], detail["attempts"]) == (
        "custom-webhook/kappa-hook", True, 1)
    assert "error" not in detail
    [(path, raw)] = receivers["kappa"].posts
    sent = json.loads(raw)
    assert path == "/hook"
    assert sent["subject"] == "[AxTrace] kappa: Label printer jammed (high)"
    assert f"Alert {alert_id} at kappa: Label printer jammed (high)." in sent["text"]
    assert "Needs kira, karl (level 1)." in sent["text"]
    due = re.search(r"Acknowledge by (\S+): axtrace ack", sent["text"])
    assert due is not None, sent["text"]
    assert aware(due.group(1)) == aware(alert["ack_deadline"])
    prefect_ui = notifying.env["PREFECT_API_URL"].removesuffix("/api")
    assert sent["text"].endswith(
        f"\nThe run: {prefect_ui}/runs/flow-run/{alert['flow_run_id']}")


def test_a_run_notifies_by_email_through_the_saved_email_block(
    notifying: Stack, mailbox: tuple[Mailbox, int],
) -> None:
    alert_id = notifying.raise_alert("omicron", "Scale drifting", severity="critical")
    detail = notified(notifying, alert_id)[0]
    alert = notifying.alert(alert_id)
    assert (detail["channel"], detail["delivered"], detail["attempts"]) == (
        "axtrace-email/omicron-mail", True, 1)
    [mail] = mailbox[0].messages
    assert mail["Subject"] == "[AxTrace] omicron: Scale drifting (critical)"
    assert mail["To"] == "omicron-ops@example.org"
    part = mail.get_body()
    assert part is not None
    text = part.get_content()
    assert "Needs olga, otto (level 1)." in text
    due = re.search(r"Acknowledge by (\S+): axtrace ack", text)
    assert due is not None, text
    assert aware(due.group(1)) == aware(alert["ack_deadline"])
    assert f"/runs/flow-run/{alert['flow_run_id']}" in text


def test_a_webhook_failing_twice_is_delivered_on_the_third_attempt(
    notifying: Stack, receivers: dict[str, Receiver],
) -> None:
    alert_id = notifying.raise_alert("mu", "Conveyor stalled")
    detail = notified(notifying, alert_id)[0]
    assert (detail["delivered"], detail["attempts"]) == (True, 3)
    assert "error" not in detail
    assert len(receivers["mu"].posts) == 3
    assert len({body for _path, body in receivers["mu"].posts}) == 1, "the same text each time"


def test_a_webhook_that_always_fails_is_recorded_and_the_deadlines_still_escalate(
    notifying: Stack, receivers: dict[str, Receiver],
) -> None:
    alert_id = notifying.raise_alert("nu", "Camera offline")
    alert = notifying.wait_for(alert_id, lambda a: a["status"] == "ignored", timeout=120,
                               what="every level's deadline passed")
    steps = [e["step"] for e in alert["trace"]]
    assert steps == ["received", "assigned", "notified", "escalated", "notified", "ignored"]
    first, second = (e["detail"] for e in alert["trace"] if e["step"] == "notified")
    for detail in (first, second):
        assert (detail["delivered"], detail["attempts"]) == (False, 4)
        assert detail["error"] == ("HTTPStatusError 503 (details in the notification "
                                   "block's own logs)")
    assert len(receivers["nu"].posts) == 8
    assigned = alert["trace"][1]["detail"]
    assert aware(first["ack_deadline"]) == aware(assigned["ack_deadline"]), \
        "the deadline runs from the first notification, not from the last attempt"
    escalated = alert["trace"][3]
    late = (aware(escalated["at"]) - aware(assigned["ack_deadline"])).total_seconds()
    assert 0 <= late < 20, "escalated when the deadline passed, failed sends or not"


def test_without_a_block_the_ledger_is_the_channel_and_nothing_is_delivered(
    notifying: Stack, receivers: dict[str, Receiver],
) -> None:
    alert_id = notifying.raise_alert("xi", "Drift on model 7")
    detail = notified(notifying, alert_id)[0]
    assert (detail["channel"], detail["delivered"]) == ("ledger", False)
    assert "attempts" not in detail
    assert "error" not in detail


# --------------------------------------------------------------------------- in process


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade(url)
    yield url
    get_settings.cache_clear()


def alert_to_notify(ledger: str, policy: dict[str, Any]) -> int:
    pinned = ownership.snapshot(OwnershipPolicy.model_validate(policy))
    with Session(engine_for(ledger)) as session:
        alert = repo.create_alert(session=session, actor="t", dispatch=False,
                                  alert=AlertCreate(site="berlin-plant", key="k", title="x"))
        alert.policy, alert.level = pinned, 1
        alert.ack_deadline = utcnow()
        session.add(alert)
        session.commit()
        assert alert.id is not None
        return alert.id


@pytest.mark.parametrize("allowed", [False, True])
def test_a_saved_block_aimed_at_a_private_address_is_refused_unless_allowed(
    stack: Stack, ledger: str, monkeypatch: pytest.MonkeyPatch, allowed: bool,
) -> None:
    """Block.load reads the block saved in the session's Prefect server."""
    with receiving() as receiver:
        MattermostWebhook(hostname="localhost", port=receiver.port, token="tok",
                          secure=False).save(f"team-chat-{allowed}".lower(), overwrite=True)
        monkeypatch.setenv("AXTRACE_ALLOW_PRIVATE_WEBHOOKS", str(allowed).lower())
        get_settings.cache_clear()
        alert_id = alert_to_notify(ledger, {
            **POLICY, "notification_block": f"mattermost-webhook/team-chat-{allowed}".lower()})
        deadline = workflow.load_alert(alert_id).ack_deadline
        detail = workflow.notify(alert_id)
    assert detail["delivered"] is allowed
    if allowed:
        assert "error" not in detail
        assert [path for path, _body in receiver.posts] == ["/hooks/tok"]
    else:
        assert detail["attempts"] == 1, "a refusal is final: not retried"
        assert detail["error"].startswith(
            "refused: hostname+port: localhost resolves to 127.0.0.1, a non-public address")
        assert receiver.connections == 0
    alert = workflow.load_alert(alert_id)
    assert (alert.notified_level, alert.ack_deadline) == (1, deadline), "the clock runs on"
