"""What leaves AxTrace: sandboxed notification text, and webhooks only to public hosts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from axtrace import outbound
from axtrace_blocks import OwnershipPolicy
from tests.unit.conftest import POLICY

CONTEXT = {"alert": {"id": 7, "site": "berlin-plant", "title": "Crack", "severity": "high"},
           "level": 1, "responders": ["anna", "ben"], "deadline": "10:00"}


def test_the_standard_text_names_the_alert_the_people_and_the_command() -> None:
    body, error = outbound.render(None, CONTEXT)
    assert error is None
    assert "Alert 7 at berlin-plant: Crack" in body
    assert "anna, ben" in body
    assert "axtrace ack 7" in body


def test_a_policy_template_renders_the_alerts_fields() -> None:
    body, error = outbound.render("{{ alert.site | upper }} needs {{ responders[0] }}", CONTEXT)
    assert (body, error) == ("BERLIN-PLANT needs anna", None)


@pytest.mark.parametrize("attack", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ alert.__class__.__init__.__globals__ }}",
    "{% set x = responders.append('mallory') %}{{ responders }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
])
def test_a_template_cannot_reach_code_and_falls_back_to_the_standard_text(attack: str) -> None:
    body, error = outbound.render(attack, CONTEXT)
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
