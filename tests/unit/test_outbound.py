"""What leaves AxTrace: sandboxed notification text, and webhooks only to public hosts."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prefect.blocks.abstract import NotificationError
from prefect.blocks.core import Block
from prefect.blocks.notifications import (
    CustomWebhookNotificationBlock,
    MattermostWebhook,
    SlackWebhook,
)
from pydantic import Field, SecretStr, ValidationError

from axtrace import outbound
from axtrace.text import ZERO_WIDTH_SPACE
from axtrace_blocks import EmailNotification, OwnershipPolicy
from tests.unit.conftest import POLICY, Receiver, receiving, smtp_server

CONTEXT = {"alert": {"id": 7, "site": "berlin-plant", "title": "Crack", "severity": "high"},
           "level": 1, "responders": ["anna", "ben"], "deadline": "10:00"}


def rendered(template: str | None) -> tuple[str, str | None]:
    """The body sent for ``CONTEXT``, and the template's error if it failed."""
    found = outbound.compose(template, CONTEXT)
    return found.body, found.error


def test_the_standard_text_names_the_alert_the_people_and_the_command() -> None:
    body, error = rendered(None)
    assert error is None
    assert "Alert 7 at berlin-plant: Crack" in body
    assert "anna, ben" in body
    assert "axtrace ack 7" in body


def test_a_policy_template_renders_the_alerts_fields() -> None:
    body, error = rendered("{{ alert.site | upper }} needs {{ responders[0] }}")
    assert (body, error) == ("BERLIN-PLANT needs anna", None)


@pytest.mark.parametrize("attack", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ alert.__class__.__init__.__globals__ }}",
    "{% set x = responders.append('mallory') %}{{ responders }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
])
def test_a_template_cannot_reach_code_and_falls_back_to_the_standard_text(attack: str) -> None:
    body, error = rendered(attack)
    assert error is not None
    assert "Alert 7 at berlin-plant" in body
    assert "uid=" not in body


def test_a_policy_with_a_broken_template_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="notification_template is not a valid template"):
        OwnershipPolicy.model_validate({**POLICY, "notification_template": "{{ unclosed"})


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/x",
    "http://192.168.0.10/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x",
])
def test_webhooks_to_loopback_private_or_link_local_addresses_are_refused(url: str) -> None:
    with pytest.raises(outbound.RefusedTarget, match="non-public address"):
        outbound.check_url(url, allow_private=False)


def test_private_webhooks_pass_when_configuration_allows_them() -> None:
    outbound.check_url("http://127.0.0.1:8080/hook", allow_private=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x", "http:///nohost"])
def test_only_http_urls_with_a_host_may_be_called(url: str) -> None:
    with pytest.raises(outbound.RefusedTarget, match="only http"):
        outbound.check_url(url, allow_private=True)


def test_public_addresses_pass() -> None:
    outbound.check_url("https://93.184.215.14/hook", allow_private=False)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.0.10", "100.64.0.1",
    "169.254.169.254", "fe80::1%eth0", "fc00::1", "224.0.0.251", "ff02::1", "240.0.0.1",
    "255.255.255.255", "0.0.0.0", "::",  # noqa: S104 (addresses to refuse, not to bind)
    "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe", "192.0.2.7", "2001:db8::1",
])
def test_the_address_decision_refuses_every_non_public_address(address: str) -> None:
    why = outbound.refusal(address, allow_private=False)
    assert why is not None
    assert why.startswith(f"{address}, a non-public address (")
    assert outbound.refusal(address, allow_private=True) is None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111",
                                     "::ffff:93.184.215.14", "64:ff9b::5db8:d70e"])
def test_the_address_decision_lets_public_addresses_through(address: str) -> None:
    assert outbound.refusal(address, allow_private=False) is None


@pytest.mark.parametrize("url", ["http://2130706433/x", "http://0x7f000001/x", "http://127.1/x",
                                 "http://0177.0.0.1/x", "http://[::ffff:7f00:1]/x"])
def test_other_spellings_of_loopback_are_refused_as_the_resolver_reads_them(url: str) -> None:
    with pytest.raises(outbound.RefusedTarget, match=r"127\.0\.0\.1|::ffff:7f00:1"):
        outbound.check_url(url, allow_private=False)


# --------------------------------------------------------------------------- where it goes


class SmtpLikeBlock(Block):
    """A notification block of another shape: its address in a server field and a port."""

    smtp_server: str = Field(description="The mail server.")
    smtp_port: int = Field(default=25, description="Its port.")
    api_url: SecretStr = Field(description="A secret URL.")
    clickable_url: str = Field(default="http://10.0.0.9/", description="A link for people.")


def test_every_address_bearing_field_of_a_block_is_found_with_its_port() -> None:
    mattermost = MattermostWebhook(hostname="chat.internal", port=8065, token="t", secure=False)
    assert outbound.block_targets(mattermost) == [
        outbound.Target("hostname+port", "chat.internal", 8065)]
    slack = SlackWebhook(url="https://hooks.slack.com/services/T0/B0/XXXX")
    assert outbound.block_targets(slack) == [outbound.Target("url", "hooks.slack.com", None)]
    other = SmtpLikeBlock(smtp_server="mail.internal", api_url="https://api.internal:8443/x")
    assert outbound.block_targets(other) == [
        outbound.Target("smtp_server+smtp_port", "mail.internal", 25),
        outbound.Target("api_url", "api.internal", 8443)]


def loopback_blocks(port: int) -> dict[str, tuple[Block, str]]:
    """Real Prefect notification blocks aimed at the receiver, and the field that says so."""
    return {
        "custom webhook": (CustomWebhookNotificationBlock(
            name="hook", url=f"http://127.0.0.1:{port}/hook", json_data={"text": "{{body}}"}),
            "url: 127.0.0.1"),
        "mattermost": (MattermostWebhook(hostname="localhost", port=port, token="tok",
                                         secure=False), "hostname+port: localhost"),
        "slack": (SlackWebhook(url=f"http://localhost:{port}/services/T0/B0/XXXX"),
                  "url: localhost"),
    }


@pytest.mark.parametrize("kind", ["custom webhook", "mattermost", "slack"])
def test_real_blocks_aimed_at_loopback_are_refused_naming_the_field_and_address(
    receiver: Receiver, kind: str,
) -> None:
    block, where = loopback_blocks(receiver.port)[kind]
    with pytest.raises(outbound.RefusedTarget) as refused:
        outbound.send(block, body="Crack", subject="s", allow_private=False)
    assert str(refused.value).startswith(f"{where} resolves to 127.0.0.1, a non-public")
    assert receiver.connections == 0


@pytest.mark.parametrize(("kind", "path"), [("custom webhook", "/hook"),
                                            ("mattermost", "/hooks/tok")])
def test_real_blocks_deliver_to_loopback_when_private_webhooks_are_allowed(
    receiver: Receiver, kind: str, path: str,
) -> None:
    block, _where = loopback_blocks(receiver.port)[kind]
    outbound.send(block, body="Crack at line 3", subject="s", allow_private=True)
    assert [p for p, _body in receiver.posts] == [path]
    assert b"Crack at line 3" in receiver.posts[0][1]


def test_an_address_the_block_fills_in_when_it_sends_is_checked_at_the_connection(
    receiver: Receiver,
) -> None:
    block = CustomWebhookNotificationBlock(
        name="hook", url="http://{{host}}/hook", json_data={"text": "{{body}}"},
        secrets={"host": f"127.0.0.1:{receiver.port}"})
    assert outbound.block_targets(block) == []
    with pytest.raises(outbound.RefusedTarget, match=(
            r"^the address the notification connects to: 127\.0\.0\.1 resolves to")):
        outbound.send(block, body="Crack", subject="s", allow_private=False)
    assert receiver.connections == 0
    outbound.send(block, body="Crack", subject="s", allow_private=True)
    assert [path for path, _body in receiver.posts] == ["/hook"]


def test_a_slack_block_connects_only_where_its_checked_name_resolved(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prefect's SlackWebhook only sends to hooks.slack.com (Apprise cannot parse any other
    host), so to aim a real one at loopback the test makes that name resolve to 127.0.0.1
    (and its https port the receiver's) under the guard. Refused by default; allowed, Apprise
    connects to exactly that address (then fails: it always speaks https to Slack, and the
    receiver speaks plain http)."""
    real = outbound._real_getaddrinfo

    def slack_on_loopback(host: Any, port: Any, *args: Any) -> Any:
        host = "127.0.0.1" if host == "hooks.slack.com" else host
        if host == "127.0.0.1" and str(port) == "443":
            port = receiver.port  # Slack's https port, here the receiver's
        return real(host, port, *args)

    monkeypatch.setattr(outbound, "_real_getaddrinfo", slack_on_loopback)
    block = SlackWebhook(url="https://hooks.slack.com/services/T0/B0/XXXX")
    with pytest.raises(outbound.RefusedTarget, match=r"url: hooks\.slack\.com resolves to 127\."):
        outbound.send(block, body="Crack", subject="s", allow_private=False)
    assert receiver.connections == 0
    with pytest.raises(NotificationError):  # https spoken to plain http: not a refusal
        outbound.send(block, body="Crack", subject="s", allow_private=True)
    assert receiver.connections >= 1


def test_a_send_from_a_thread_running_an_event_loop_still_sends_and_raises(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prefect's webhook blocks call their parent's ``notify`` without ``_sync``: from a thread
    with a running loop (or an async run context) that went async, sending nothing and raising
    nothing (seen once in the full suite). The send has a thread of its own."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    real = outbound._real_getaddrinfo

    def slack_on_loopback(host: Any, port: Any, *args: Any) -> Any:
        if host == "hooks.slack.com":
            host, port = "127.0.0.1", receiver.port
        return real(host, port, *args)

    monkeypatch.setattr(outbound, "_real_getaddrinfo", slack_on_loopback)
    block = SlackWebhook(url="https://hooks.slack.com/services/T0/B0/XXXX")

    async def inside_a_loop() -> None:
        with pytest.raises(NotificationError):
            outbound.send(block, body="Crack", subject="s", allow_private=True)

    # a thread of the test's own runs the loop: this one may already run one (Playwright's
    # sync API, used by tests/ui earlier in the session, leaves one running here)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, inside_a_loop()).result()
    assert receiver.connections >= 1


def test_a_name_that_answers_public_then_private_cannot_send_the_client_to_the_private_one(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding cannot be produced for real on this machine (no resolver of our own), so
    the test replaces the system resolver under the guard: the first answer for the name is
    public, every later one is the receiver's loopback address."""
    real = outbound._real_getaddrinfo
    asked: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any) -> Any:
        if host != "rebind.example":
            return real(host, port, *args)
        asked.append(host)
        answer = "93.184.215.14" if len(asked) == 1 else "127.0.0.1"
        return real(answer, port, *args)

    monkeypatch.setattr(outbound, "_real_getaddrinfo", rebinding)
    block = CustomWebhookNotificationBlock(
        name="hook", url=f"http://rebind.example:{receiver.port}/hook", timeout=2,
        json_data={"text": "{{body}}"})
    with outbound.pinned_addresses(allow_private=False):
        first = socket.getaddrinfo("rebind.example", receiver.port, type=socket.SOCK_STREAM)
        again = socket.getaddrinfo("rebind.example", receiver.port, type=socket.SOCK_STREAM)
    assert {i[4][0] for i in first} == {i[4][0] for i in again} == {"93.184.215.14"}
    asked.clear()
    with pytest.raises(httpx.TransportError):  # nothing answers at the public address here
        outbound.send(block, body="Crack", subject="s", allow_private=False)
    assert asked == ["rebind.example"], "the name was looked up once, by the check"
    assert receiver.connections == 0, "the client never reached the private address"


def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = outbound._real_getaddrinfo

    def mixed(host: Any, port: Any, *args: Any) -> Any:
        if host != "mixed.example":
            return real(host, port, *args)
        return real("93.184.215.14", port, *args) + real("10.0.0.5", port, *args)

    monkeypatch.setattr(outbound, "_real_getaddrinfo", mixed)
    refused = r"url: mixed\.example resolves to 10\.0\.0\.5"
    with pytest.raises(outbound.RefusedTarget, match=refused):
        outbound.check_url("https://mixed.example/hook", allow_private=False)


def test_the_guard_pins_only_the_sending_thread() -> None:
    seen: list[object] = []
    with outbound.pinned_addresses(allow_private=False):
        worker = threading.Thread(target=lambda: seen.append(
            socket.getaddrinfo("127.0.0.1", 80)))
        worker.start()
        worker.join()
        with pytest.raises(socket.gaierror, match="refused by AxTrace"):
            socket.getaddrinfo("127.0.0.1", 80)
    assert seen, "another thread resolves as before"
    assert seen[0]
    assert socket.getaddrinfo("127.0.0.1", 80), "and so does this one, after the send"


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(("template", "error"), [
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ("{{ 2.0 ** 100000 }}", "OverflowError"),
    ("{{ alert.title + 1 }}", "TypeError"),
    ("{{ responders[5].name.first }}", "UndefinedError"),
    ("{{ 10 ** (10 ** 10) }}", "RenderLimit"),
    ("{{ 'x' * 10 ** 9 }}", "RenderLimit"),
    ("{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}"
     "{% endfor %}{{ ns.x }}", "RenderLimit"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
     "{% endfor %}{{ ns.s }}", "RenderLimit"),
    ("{{ responders | map('int') | sum / 0 }}", "ZeroDivisionError"),
])
def test_a_template_failing_at_run_time_falls_back_to_the_standard_text(
    template: str, error: str,
) -> None:
    found = outbound.compose(template, CONTEXT)
    assert found.text == "standard"
    assert found.error is not None
    assert found.error.startswith(error)
    assert "Alert 7 at berlin-plant: Crack" in found.body


def test_rendering_is_stopped_after_its_time_bound() -> None:
    slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    found = outbound.compose(slow, CONTEXT)
    assert time.monotonic() - started < outbound.RENDER_SECONDS + 2
    assert found.text == "standard"
    assert found.error == f"RenderLimit: rendering took longer than {outbound.RENDER_SECONDS:g}s"


def test_a_body_over_the_size_bound_is_cut_and_the_cut_noted() -> None:
    found = outbound.compose("{% for i in range(100000) %}0123456789{% endfor %}", CONTEXT)
    assert found.text == "policy"
    assert found.truncated
    assert len(found.body) == outbound.MAX_BODY_CHARS
    assert found.body.endswith(outbound.TRUNCATION_MARK)
    assert found.error == f"cut to {outbound.MAX_BODY_CHARS} characters"


# --------------------------------------------------------------------------- mentions


def with_title(title: str) -> dict[str, Any]:
    return {**CONTEXT, "alert": {**CONTEXT["alert"], "title": title}}  # type: ignore[dict-item]


def test_mass_mentions_in_alert_fields_never_mention() -> None:
    for allow in (False, True):
        found = outbound.compose(None, with_title("<!channel> @here @everyone"),
                                 allow_mass_mentions=allow)
        assert f"<{ZERO_WIDTH_SPACE}!channel> @{ZERO_WIDTH_SPACE}here " \
               f"@{ZERO_WIDTH_SPACE}everyone" in found.body


def test_the_templates_own_mass_mentions_need_the_policy_to_allow_them() -> None:
    template = "@channel {{ alert.title }}"
    assert outbound.compose(template, CONTEXT).body == f"@{ZERO_WIDTH_SPACE}channel Crack"
    assert outbound.compose(template, CONTEXT, allow_mass_mentions=True).body == \
        "@channel Crack"


def test_the_policy_field_allowing_mass_mentions_is_off_by_default() -> None:
    assert OwnershipPolicy.model_validate(POLICY).allow_mass_mentions is False


TEMPLATES = st.sampled_from([
    None, "{{ alert.title }}", "{{ alert.title | upper }} {{ alert.site }}",
    "{{ alert.title * 3 }}", "{{ alert.title | int / 0 }}", "{{ alert.title[0] }}",
    "{{ alert.title | length ** 2 }}", "{{ alert.title ~ responders | join('@') }}",
])


@given(title=st.text(), template=TEMPLATES)
@settings(max_examples=200)
def test_any_title_renders_in_any_template_without_mass_mentions(
    title: str, template: str | None,
) -> None:
    found = outbound.compose(template, with_title(title))
    assert len(found.body) <= outbound.MAX_BODY_CHARS
    assert found.text == "policy" or template is None or found.error is not None
    lowered = found.body.lower()
    for mention in ("@channel", "@here", "@everyone", "<!channel", "<!here"):
        assert mention not in lowered


# --------------------------------------------------------------------------- failed sends


def hook(port: int) -> CustomWebhookNotificationBlock:
    return CustomWebhookNotificationBlock(
        name="ops", url=f"http://127.0.0.1:{port}/hook",
        json_data={"subject": "{{subject}}", "text": "{{body}}"})


@pytest.mark.parametrize(("attempt", "error", "wait"), [
    (1, RuntimeError("503"), 0.5), (2, RuntimeError("503"), 1.0), (3, OSError("reset"), 2.0),
    (4, RuntimeError("503"), None), (1, outbound.RefusedTarget("url: 10.0.0.1"), None),
])
def test_a_failed_send_is_retried_three_times_after_fixed_delays_and_a_refusal_never(
    attempt: int, error: Exception, wait: float | None,
) -> None:
    assert outbound.retry_after(attempt, error) == wait


def test_a_receiver_failing_twice_gets_the_third_attempt_after_the_fixed_backoff() -> None:
    with receiving(fail_first=2) as receiver:
        started = time.monotonic()
        sent = outbound.deliver(hook(receiver.port), body="Crack at line 3", subject="s",
                                allow_private=True)
        took = time.monotonic() - started
    assert sent == outbound.Delivery(delivered=True, attempts=3)
    assert len(receiver.posts) == 3
    assert all(b"Crack at line 3" in body for _path, body in receiver.posts)
    assert 1.5 <= took < 10, "0.5 s then 1 s between the attempts"


def test_a_receiver_that_always_fails_is_tried_four_times_then_reported_not_raised() -> None:
    with receiving(fail_first=-1) as receiver:
        started = time.monotonic()
        sent = outbound.deliver(hook(receiver.port), body="Crack", subject="s",
                                allow_private=True)
        took = time.monotonic() - started
    assert (sent.delivered, sent.attempts) == (False, 4)
    assert sent.error == ("HTTPStatusError 503 (details in the notification block's own "
                          "logs)")
    assert len(receiver.posts) == 4
    assert 3.5 <= took < 15, "0.5 + 1 + 2 s of backoff: seconds, bounded"


def test_a_refused_address_is_not_tried_again(receiver: Receiver) -> None:
    sent = outbound.deliver(hook(receiver.port), body="Crack", subject="s",
                            allow_private=False)
    assert (sent.delivered, sent.attempts) == (False, 1)
    assert sent.error is not None
    assert sent.error.startswith("refused: url: 127.0.0.1 resolves to 127.0.0.1, a non-public")
    assert receiver.connections == 0


def test_the_standard_text_links_to_the_run_when_there_is_one() -> None:
    link = "http://127.0.0.1:4200/runs/flow-run/0b5e"
    assert outbound.compose(None, {**CONTEXT, "run_url": link}).body.endswith(
        f"\nThe run: {link}")
    assert "The run" not in outbound.compose(None, {**CONTEXT, "run_url": None}).body


def mail_block(port: int) -> EmailNotification:
    return EmailNotification(smtp_server="127.0.0.1", smtp_port=port, smtp_type="INSECURE",
                             email_from="axtrace@example.org", email_to=["ops@example.org"])


def test_the_email_block_sends_the_notification_to_a_real_smtp_server() -> None:
    with smtp_server() as (mailbox, port):
        sent = outbound.deliver(mail_block(port), body="Needs anna, ben (level 1).",
                                subject="[AxTrace] berlin-plant: Crack (high)",
                                allow_private=True)
    assert sent == outbound.Delivery(delivered=True, attempts=1)
    [mail] = mailbox.messages
    assert mail["Subject"] == "[AxTrace] berlin-plant: Crack (high)"
    assert (mail["From"], mail["To"]) == ("axtrace@example.org", "ops@example.org")
    body = mail.get_body()
    assert body is not None
    assert body.get_content().strip() == "Needs anna, ben (level 1)."


def test_the_email_block_aimed_at_loopback_is_refused_naming_its_server_field() -> None:
    with smtp_server() as (mailbox, port):
        sent = outbound.deliver(mail_block(port), body="Crack", subject="s",
                                allow_private=False)
    assert (sent.delivered, sent.attempts) == (False, 1)
    assert sent.error is not None
    assert sent.error.startswith(
        "refused: smtp_server+smtp_port: 127.0.0.1 resolves to 127.0.0.1, a non-public")
    assert mailbox.messages == []


def test_an_smtp_server_that_is_not_there_is_retried_then_reported() -> None:
    from axtrace.testing import free_port

    sent = outbound.deliver(mail_block(free_port()), body="Crack", subject="s",
                            allow_private=True, delays=(0.1, 0.1))
    assert (sent.delivered, sent.attempts) == (False, 3)
    assert sent.error == "ConnectionRefusedError (details in the notification block's own logs)"
