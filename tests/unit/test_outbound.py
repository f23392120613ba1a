"""What leaves AxTrace: sandboxed notification text, and webhooks only to public hosts."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from axtrace import outbound
from axtrace.text import ZERO_WIDTH_SPACE
from axtrace_blocks import OwnershipPolicy
from tests.unit.conftest import POLICY

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
