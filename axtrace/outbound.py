"""What AxTrace sends out: notification text rendered in a sandbox, webhooks only to public
addresses unless configuration allows private ones.

A policy's ``notification_template`` is user-editable text (the Prefect UI's block form), so it
is rendered with Jinja's immutable sandbox: it can read the alert's fields, not call code.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

DEFAULT_TEMPLATE = (
    "Alert {{ alert.id }} at {{ alert.site }}: {{ alert.title }} ({{ alert.severity }}).\n"
    "Needs {{ responders | join(', ') }} (level {{ level }}). "
    "Acknowledge by {{ deadline }}: axtrace ack {{ alert.id }} --as NAME"
)
_ENV = ImmutableSandboxedEnvironment(autoescape=False)


class RefusedTarget(Exception):
    """A webhook address AxTrace will not call."""


def render(template: str | None, context: dict[str, Any]) -> tuple[str, str | None]:
    """The notification body, and the template error if the policy's template failed."""
    try:
        return _ENV.from_string(template or DEFAULT_TEMPLATE).render(**context), None
    except TemplateError as exc:  # SecurityError is a TemplateError too
        fallback = _ENV.from_string(DEFAULT_TEMPLATE).render(**context)
        return fallback, f"{type(exc).__name__}: {exc}"[:300]


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
