"""What AxTrace sends out: notification text rendered in a sandbox, webhooks only to public
addresses unless configuration allows private ones.

A policy's ``notification_template`` is user-editable text (the Prefect UI's block form), so it
is rendered with Jinja's immutable sandbox: it can read the alert's fields, not call code.

A notification never stops the response (:func:`compose` never raises): a template that fails
in any way (sandbox refusal, division by zero, overflow, type error, too slow, too big a
number) is replaced by the standard text, and the error is returned for the ``notified`` step.
Rendering is bounded: at most :data:`MAX_BODY_CHARS` characters (the rest is cut and noted),
:data:`RENDER_SECONDS` of Python work, and ``*``, ``**`` and ``+`` refuse results over those
sizes before computing them. (A filter asked for a huge width, such as ``center(10**8)``, can
still allocate that much once; only who may edit the policy block can write a template.)

Alert fields are data here too: mass mentions in them (``@channel``, ``<!here>`` ...) are
neutralised always, and in the whole text unless the policy sets ``allow_mass_mentions``.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass
from types import FrameType
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from jinja2.sandbox import ImmutableSandboxedEnvironment

from axtrace.text import without_mass_mentions

DEFAULT_TEMPLATE = (
    "Alert {{ alert.id }} at {{ alert.site }}: {{ alert.title }} ({{ alert.severity }}).\n"
    "Needs {{ responders | join(', ') }} (level {{ level }}). "
    "{% if action == 'resolve' %}Resolve by {{ deadline }}: axtrace resolve {{ alert.id }} "
    "--as NAME --outcome OUTCOME"
    "{% else %}Acknowledge by {{ deadline }}: axtrace ack {{ alert.id }} --as NAME{% endif %}"
)
MAX_BODY_CHARS = 64 * 1024
"""A rendered notification longer than this is cut (and the cut noted on the step)."""
RENDER_SECONDS = 1.0
"""Python work one rendering may take before it is stopped."""
MAX_NUMBER_BITS = 64 * 1024
"""Integers a template computes stay below this size (``10 ** 10 ** 9`` is refused)."""
TRUNCATION_MARK = f"\n[cut by AxTrace: longer than {MAX_BODY_CHARS} characters]"


class RenderLimit(Exception):
    """A template went over one of the rendering bounds."""


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with ``*``, ``**`` and ``+`` checked before they compute (so
    they are not folded at compile time either)."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    sized = (str, list, tuple, bytes)
    if operator == "+" and isinstance(left, sized) and isinstance(right, sized):
        if len(left) + len(right) > MAX_BODY_CHARS:
            raise RenderLimit(f"'+' would make more than {MAX_BODY_CHARS} items")
    elif operator == "*":
        for items, times in ((left, right), (right, left)):
            if isinstance(items, sized) and isinstance(times, int) \
                    and len(items) * times > MAX_BODY_CHARS:
                raise RenderLimit(f"'*' would make more than {MAX_BODY_CHARS} items")
        if isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
            raise RenderLimit(f"'*' would make a number over {MAX_NUMBER_BITS} bits")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) \
            and abs(left) > 1 and right > 0 and left.bit_length() * right > MAX_NUMBER_BITS:
        raise RenderLimit(f"'**' would make a number over {MAX_NUMBER_BITS} bits")


_ENV = _BoundedSandbox(autoescape=False)


class RefusedTarget(Exception):
    """A webhook address AxTrace will not call."""


@dataclass(frozen=True)
class Notification:
    """What is sent: the body, which text it is, and what went wrong with the policy's own."""

    body: str
    text: Literal["policy", "standard"]
    error: str | None = None
    truncated: bool = False


def compose(
    template: str | None, context: dict[str, Any], *, allow_mass_mentions: bool = False,
) -> Notification:
    """The notification for ``context``: the policy's template if it renders within bounds,
    else the standard text with the template's error. Never raises."""
    safe = _without_mentions(context)
    error = None
    if template:
        try:
            body, truncated = _bounded_render(template, safe)
            return Notification(mentions_as_allowed(body, allow_mass_mentions), "policy", (
                f"cut to {MAX_BODY_CHARS} characters" if truncated else None), truncated)
        except Exception as exc:  # any failure of an operator's template: standard text
            error = f"{type(exc).__name__}: {exc}"[:300]
    try:
        body, truncated = _bounded_render(DEFAULT_TEMPLATE, safe)
    except Exception:  # the standard text of an odd context: the plainest text there is
        body, truncated = f"AxTrace alert {safe.get('alert', {}).get('id')}", False
    return Notification(mentions_as_allowed(body, allow_mass_mentions), "standard", error,
                        truncated)


def mentions_as_allowed(text: str, allow: bool) -> str:
    """``text`` as sent: mass mentions neutralised unless the policy allows them."""
    return text if allow else without_mass_mentions(text)


def _without_mentions(value: Any) -> Any:
    """``value`` with mass mentions neutralised in every string (alert fields are data)."""
    if isinstance(value, str):
        return without_mass_mentions(value)
    if isinstance(value, dict):
        return {name: _without_mentions(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_mentions(item) for item in value]
    return value


def _bounded_render(template: str, context: dict[str, Any]) -> tuple[str, bool]:
    """Render within :data:`RENDER_SECONDS` and :data:`MAX_BODY_CHARS`; True if cut."""
    deadline = time.monotonic() + RENDER_SECONDS

    def stop_when_late(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise RenderLimit(f"rendering took longer than {RENDER_SECONDS:g}s")
        return stop_when_late

    previous = sys.gettrace()
    sys.settrace(stop_when_late)
    try:
        parts, size = [], 0
        stream = cast(Generator[str, None, None], _ENV.from_string(template).generate(**context))
        try:
            for part in stream:
                parts.append(part)
                size += len(part)
                if size > MAX_BODY_CHARS:
                    text = "".join(parts)[:MAX_BODY_CHARS - len(TRUNCATION_MARK)]
                    return text + TRUNCATION_MARK, True
        finally:
            stream.close()
        return "".join(parts), False
    finally:
        sys.settrace(previous)


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse URLs that are not http(s) or resolve to loopback, private or link-local hosts."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedTarget(f"only http(s) URLs with a host may be called, not {parts.scheme!r}")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RefusedTarget(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise RefusedTarget(
                f"{parts.hostname} resolves to {address}, a non-public address; set "
                "AXTRACE_ALLOW_PRIVATE_WEBHOOKS=true to allow it")


def block_urls(block: Any) -> list[str]:
    """The webhook URLs a notification block would call (SecretStr values revealed)."""
    urls = []
    for name in ("url", "webhook_url"):
        value = getattr(block, name, None)
        if value is None:
            continue
        reveal = getattr(value, "get_secret_value", None)
        urls.append(str(reveal() if reveal else value))
    return urls
