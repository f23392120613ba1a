"""What AxTrace sends out: notification text rendered in a sandbox, notifications only to public
addresses unless configuration allows private ones, checked where the connection is made.

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

Where a notification goes (:func:`send`): every address-bearing field of the block (any field
named like ``url``, ``host``, ``hostname``, ``server``, ``smtp_server``, ``endpoint`` ..., with
its ``port`` field, SecretStr and URL values revealed, and the webhook URLs Apprise built from
them) is resolved and checked before anything is sent, and the refusal names the field and the
address. Then, while the block sends, ``socket.getaddrinfo`` of the sending thread is pinned
(:func:`pinned_addresses`): each name is resolved once, every address it has is checked
(:func:`refusal`, a pure decision: loopback, private, link-local, multicast, reserved,
unspecified and other non-global addresses, also inside IPv4-mapped and NAT64 IPv6; decimal
or hex forms such as ``2130706433`` are normalised by the resolver first), and the client
gets exactly those addresses, however often it asks: a name that answers a public address to
the check and a private one to the client (DNS rebinding) cannot reach the private one.
Apprise's parallel dispatch is switched off for the send so it stays in the pinned thread.
Code that captured ``getaddrinfo`` at import time, or a proxy between AxTrace and the target,
is outside this guard.

A failed send is tried again (:func:`deliver`): at most ``len(RETRY_DELAYS) + 1`` attempts,
:data:`RETRY_DELAYS` apart (seconds in all), then given up and reported, never raised. A
refusal is final at once: the address will not change between attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import ipaddress
import re
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
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
    "{% if run_url %}\nThe run: {{ run_url }}{% endif %}"
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


def run_url(flow_run_id: str | None) -> str | None:
    """The Prefect UI page of run ``flow_run_id`` (None without a run or a UI URL)."""
    if not flow_run_id:
        return None
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None


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


# --------------------------------------------------------------------------- where it goes

ALLOW_HINT = "set AXTRACE_ALLOW_PRIVATE_WEBHOOKS=true to allow it"
_ADDRESS_FIELD = re.compile(r"(?:^|_)(?:url|uri|host|hostname|server|endpoint|domain)$")
_URL_FIELD = re.compile(r"(?:^|_)(?:url|uri)$")
_HTTP_ONLY = ("url", "webhook_url")
"""Fields that have always had to be http(s) webhook URLs."""
_SHOWN_LINKS = frozenset({"clickable_url", "avatar_url", "image_url", "icon_url", "logo_url"})
"""Fields holding links put into the message for people (AxTrace does not connect there)."""
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Target:
    """One place a notification block connects to, and the field(s) that say so."""

    field: str
    host: str
    port: int | None = None


def refusal(address: str, *, allow_private: bool) -> str | None:
    """Why AxTrace will not connect to ``address`` (an IP address as a resolver gives it),
    or None. Pure: the decision every connection of a notification goes through."""
    if allow_private:
        return None
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone is not the address
    judged: ipaddress.IPv4Address | ipaddress.IPv6Address = ip
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        judged = ip.ipv4_mapped  # ::ffff:a.b.c.d goes to a.b.c.d
    elif isinstance(ip, ipaddress.IPv6Address) and ip in _NAT64:
        judged = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # so does 64:ff9b::a.b.c.d
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(judged, f"is_{kind}"):
            return f"{address}, a non-public address ({kind.replace('_', '-')})"
    if not judged.is_global:
        return f"{address}, a non-public address (not globally routable)"
    return None


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a webhook URL that is not http(s), or whose host resolves to an address
    :func:`refusal` refuses (``RefusedTarget`` naming the address)."""
    target = url_target("url", url, http_only=True)
    if target is not None:
        with pinned_addresses(allow_private=allow_private) as pins:
            pins.check(target)


def url_target(field: str, url: str, *, http_only: bool = False) -> Target | None:
    """The host and port ``url`` connects to; None for a value that is no URL (a
    ``RefusedTarget`` for one that must be http(s) and is not)."""
    parts = urlsplit(url.strip())
    if http_only and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise RefusedTarget(f"{field}: only http(s) URLs with a host may be called, not "
                            f"{parts.scheme!r}")
    if not parts.scheme or not parts.hostname or "{" in parts.hostname:
        return None  # no URL, or a host the block fills in when it sends (checked then)
    try:
        port = parts.port
    except ValueError as exc:
        raise RefusedTarget(f"{field}: {exc}") from None
    return Target(field, parts.hostname, port)


def block_targets(block: Any) -> list[Target]:
    """Every address ``block`` would connect to: its address-bearing fields (with their
    ``port`` field), found by name and by value, and the webhook URLs Apprise built."""
    values = {name: _plain(getattr(block, name, None)) for name in type(block).model_fields}
    targets: list[Target] = []
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip() or name in _SHOWN_LINKS:
            continue
        found = url_target(name, value, http_only=name in _HTTP_ONLY)
        if found is None and _ADDRESS_FIELD.search(name) and not _URL_FIELD.search(name):
            port_name = _port_field(name, values)
            port = values.get(port_name) if port_name else None
            found = Target(f"{name}+{port_name}" if port_name else name, value.strip(),
                           port if isinstance(port, int) else None)
        if found is not None:
            targets.append(found)
    for service in getattr(block, "_apprise_client", None) or ():
        built = getattr(service, "webhook_url", None)
        if isinstance(built, str):
            found = url_target("url (as Apprise sends it)", built)
            targets.extend([found] if found is not None else [])
    unique = {(_name_key(t.host), t.port): t for t in reversed(targets)}
    return list(reversed(unique.values()))


def _plain(value: Any) -> Any:
    reveal = getattr(value, "get_secret_value", None)
    value = reveal() if callable(reveal) else value
    return value if isinstance(value, str | int | type(None)) else str(value)


def _port_field(name: str, values: dict[str, Any]) -> str | None:
    """The port field that goes with host field ``name`` (``smtp_server`` -> ``smtp_port``)."""
    prefix = name.rsplit("_", 1)[0] + "_" if "_" in name else ""
    for candidate in (f"{prefix}port", "port"):
        if isinstance(values.get(candidate), int) and not isinstance(values[candidate], bool):
            return candidate
    return None


RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)
"""Seconds to wait before the 2nd, 3rd and 4th attempt of a failed send (3.5 s in all)."""


@dataclass(frozen=True)
class Delivery:
    """How a send went: delivered or not, after how many attempts, and the last error."""

    delivered: bool
    attempts: int
    error: str | None = None


def retry_after(attempt: int, error: Exception, delays: tuple[float, ...] = RETRY_DELAYS,
                ) -> float | None:
    """Seconds to wait before trying again after failed attempt ``attempt`` (1-based), or
    None to give up. Pure: a refusal is never retried, other failures ``len(delays)`` times."""
    if isinstance(error, RefusedTarget) or attempt > len(delays):
        return None
    return delays[attempt - 1]


def failure(error: Exception) -> str:
    """What the trace says of a failed send: a refusal in full (it names the field and the
    address, never a secret), else the type and, for HTTP, the status; not the message, which
    may carry a (secret) webhook URL."""
    if isinstance(error, RefusedTarget):
        return f"refused: {error}"[:500]
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return f"{type(error).__name__}{f' {status}' if isinstance(status, int) else ''}" \
        " (details in the notification block's own logs)"


def deliver(block: Any, *, body: str, subject: str, allow_private: bool,
            delays: tuple[float, ...] = RETRY_DELAYS) -> Delivery:
    """:func:`send`, tried again after a failure as :func:`retry_after` says. Never raises."""
    attempt = 0
    while True:
        attempt += 1
        try:
            send(block, body=body, subject=subject, allow_private=allow_private)
            return Delivery(True, attempt)
        except Exception as exc:  # any failure of a block's send: reported, not raised
            wait = retry_after(attempt, exc, delays)
            if wait is None:
                return Delivery(False, attempt, failure(exc))
        time.sleep(wait)


def send(block: Any, *, body: str, subject: str, allow_private: bool) -> None:
    """Notify through ``block``, connecting only to addresses :func:`refusal` lets through,
    checked where the connection is made. ``RefusedTarget`` names the field and address.

    The send runs in a thread of its own, with an empty ``contextvars`` context and no event
    loop: Prefect's webhook blocks call their parent's ``notify`` without ``_sync``, which goes
    async (an un-awaited coroutine: nothing sent, nothing raised) whenever the calling thread
    runs an event loop or holds a Prefect run context that says "async"."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="axtrace-notify") as pool:
        pool.submit(contextvars.Context().run, _send_here, block, body, subject,
                    allow_private).result()


def _send_here(block: Any, body: str, subject: str, allow_private: bool) -> None:
    targets = block_targets(block)
    with pinned_addresses(allow_private=allow_private) as pins:
        for target in targets:
            pins.check(target)
        for service in getattr(block, "_apprise_client", None) or ():
            service.asset.async_mode = False  # Apprise's worker threads are not pinned
        try:
            _notify(block, body, subject)
        except Exception:
            if pins.refused:
                raise RefusedTarget(pins.explain(targets)) from None
            raise
        if pins.refused:  # a block that swallowed the failed connection
            raise RefusedTarget(pins.explain(targets))


def _notify(block: Any, body: str, subject: str) -> None:
    """``block.notify`` in this thread (Prefect's async dispatch would move it to another
    one), raising when the send failed (Prefect's blocks otherwise only log it)."""
    failing = getattr(block, "raise_on_failure", None)
    with failing() if callable(failing) else contextlib.nullcontext():
        if hasattr(block.notify, "aio"):  # Prefect's async_dispatch
            block.notify(body=body, subject=subject, _sync=True)
        else:
            sent = block.notify(body=body, subject=subject)
            if inspect.isawaitable(sent):  # an async notify, as NotificationBlock declares it
                asyncio.run(_awaited(sent))


async def _awaited(sent: Awaitable[Any]) -> None:
    """Await ``sent`` in this thread's own loop (the sending thread has none of its own)."""
    await sent


class _Pins:
    """Names resolved once in one thread while it sends, each to its checked addresses."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.vetted: dict[str, list[str] | str] = {}
        self.refused: list[tuple[str, str]] = []  # (name, why)

    def addresses(self, name: str) -> list[str]:
        """``name``'s checked addresses (resolved the first time only); ``socket.gaierror``
        for a name refused or not found."""
        key = _name_key(name)
        if key not in self.vetted:
            self.vetted[key] = self._resolve(name)
        found = self.vetted[key]
        if isinstance(found, str):
            raise socket.gaierror(socket.EAI_NONAME, f"refused by AxTrace: {found}")
        return found

    def _resolve(self, name: str) -> list[str] | str:
        infos = _real_getaddrinfo(name, None, 0, socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            why = refusal(address, allow_private=self.allow_private)
            if why is not None:
                self.refused.append((name, why))
                return f"{name} resolves to {why}"
        return addresses

    def lookup(self, host: Any, port: Any, family: int, kind: int, proto: int,
               flags: int) -> list[Any]:
        """``getaddrinfo`` answered from the checked addresses only."""
        name = host.decode("idna") if isinstance(host, bytes) else str(host)
        answers = []
        for address in self.addresses(name):
            try:
                answers += _real_getaddrinfo(address, port, family, kind, proto,
                                             flags | socket.AI_NUMERICHOST)
            except socket.gaierror:
                continue  # another address family than the one asked for
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, f"no checked address of {name} fits")
        return answers

    def check(self, target: Target) -> None:
        """Resolve and check ``target`` now; ``RefusedTarget`` naming its field if refused."""
        try:
            self.addresses(target.host)
        except (OSError, UnicodeError) as exc:
            found = self.vetted.get(_name_key(target.host))
            if isinstance(found, str):
                raise RefusedTarget(f"{target.field}: {found}; {ALLOW_HINT}") from None
            raise RefusedTarget(f"{target.field}: cannot resolve {target.host}: {exc}") from None

    def explain(self, targets: list[Target]) -> str:
        name, why = self.refused[0]
        fields = [t.field for t in targets if _name_key(t.host) == _name_key(name)]
        where = fields[0] if fields else "the address the notification connects to"
        return f"{where}: {name} resolves to {why}; {ALLOW_HINT}"


def _name_key(name: str) -> str:
    """One spelling of a host name (``Localhost.`` and ``localhost`` are one name)."""
    return name.lower().rstrip(".") or name


_real_getaddrinfo = socket.getaddrinfo
_local = threading.local()
_installing = threading.Lock()


def _pinned_getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0,
                        proto: int = 0, flags: int = 0) -> list[Any]:
    pins: _Pins | None = getattr(_local, "pins", None)
    if pins is None or host is None:  # other threads, and lookups of no host, as before
        return _real_getaddrinfo(host, port, family, type, proto, flags)
    return pins.lookup(host, port, family, type, proto, flags)


@contextlib.contextmanager
def pinned_addresses(*, allow_private: bool) -> Iterator[_Pins]:
    """While inside, this thread's ``socket.getaddrinfo`` resolves each name once and answers
    only its checked addresses (refused ones: ``socket.gaierror``). Other threads are as before.
    Nested use shares the outer pins."""
    with _installing:
        if socket.getaddrinfo is not _pinned_getaddrinfo:
            socket.getaddrinfo = _pinned_getaddrinfo
    outer: _Pins | None = getattr(_local, "pins", None)
    if outer is not None:
        yield outer
        return
    _local.pins = _Pins(allow_private=allow_private)
    try:
        yield _local.pins
    finally:
        _local.pins = None
