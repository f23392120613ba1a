"""Who may read and act over the HTTP API, and which browser requests are refused: pure
decisions over plain values. The API's shells (:mod:`axtrace.api`) read the headers, the
settings and the ledger, call these, and map what they raise in one place.

Closed by default: once any credential is configured (``AXTRACE_INTAKE_TOKEN``, a per-source
credential, ``AXTRACE_REQUIRE_RESPONDER_TOKENS``, or any token ever created in the ledger),

    need    credential that passes
    read    the intake token, a read token or a responder token (a token with sites: those only)
    act     once tokens are required: a responder token, which names who acts;
            before that (only the intake token or source credentials): the intake token

With no credential anywhere the API is *open*: it serves loopback only, and says so.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from axtrace.errors import (
    Forbidden,
    InvalidInput,
    Malformed,
    NotFound,
    Unauthenticated,
    Unsupported,
)

Need = Literal["read", "act"]
Kind = Literal["none", "invalid", "intake", "read", "respond"]
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_HOST = "*"
OPEN_HEADER = "x-axtrace-open"


@dataclass(frozen=True)
class Posture:
    """What this process and its ledger have configured."""

    credentials: bool
    """The intake token or a per-source credential is set in this process."""
    tokens_required: bool
    """A token was ever created in the ledger, or ``AXTRACE_REQUIRE_RESPONDER_TOKENS``."""

    @property
    def open(self) -> bool:
        return not (self.credentials or self.tokens_required)


@dataclass(frozen=True)
class Caller:
    """What a request proved: no credential, one not accepted, the intake token, or a token."""

    kind: Kind
    name: str | None = None
    sites: frozenset[str] | None = None
    """The sites a token covers; ``None``: every site."""

    def sees(self, site: str) -> bool:
        return self.sites is None or site in self.sites


NOBODY = Caller("none")


def decide(need: Need, posture: Posture, caller: Caller) -> None:
    """Raise unless ``caller`` may ``need`` under ``posture`` (401/403 naming the header)."""
    if caller.kind == "invalid":
        raise Unauthenticated("bearer token not accepted", field="authorization")
    if posture.open:
        return
    if need == "read":
        if caller.kind == "none":
            raise Unauthenticated("a token is required: the intake token, a read token or a "
                                  "responder token", field="authorization")
        return
    if not posture.tokens_required:  # only the intake token or source credentials so far
        if caller.kind not in ("intake", "respond"):
            raise Unauthenticated("the intake token or a responder token is required",
                                  field="authorization")
        return
    if caller.kind == "none":
        raise Unauthenticated("a responder token is required", field="authorization")
    if caller.kind == "read":
        raise Forbidden("this token is read-only", field="authorization")
    if caller.kind == "intake":
        raise Forbidden("the intake token cannot act; use a responder token (it names who "
                        "acts)", field="authorization")


def actor(caller: Caller, claimed: str | None) -> str:
    """Who acts: a responder token's name; without one, the name in the body (``claimed``)."""
    if caller.kind == "respond" and caller.name is not None:
        return caller.name
    if claimed is None:
        raise InvalidInput("responder is required", field="responder")
    return claimed


def visible(caller: Caller, site: str, alert_id: int) -> None:
    """An alert of a site the caller's token does not cover is answered as not existing."""
    if not caller.sees(site):
        raise NotFound(f"no alert with id {alert_id}", field="alert_id", location="path")


def report_sites(caller: Caller, asked: Collection[str]) -> list[str]:
    """The sites a report may cover: those asked (all the caller's if none); a site outside
    the caller's token is 404, whether it exists or not."""
    if caller.sites is None:
        return sorted(asked)
    outside = sorted(set(asked) - caller.sites)
    if outside:
        raise NotFound(f"no site {outside[0]!r} among this token's sites", field="site")
    return sorted(asked) or sorted(caller.sites)


def serving(*, intake_credentials: bool, host: str) -> None:
    """Without an intake credential anyone who reaches the API may post alerts (and, with no
    token either, read and act): then it listens on loopback only."""
    if not intake_credentials and host not in LOOPBACK_HOSTS:
        raise Forbidden(
            f"no intake credential is configured, so the API listens on loopback only, not "
            f"{host}: set AXTRACE_INTAKE_TOKEN (or per-source credentials in AXTRACE_SOURCES)",
            field="host")


def allowed_hosts(configured: str | None, *, own: Collection[str]) -> frozenset[str]:
    """``AXTRACE_ALLOWED_HOSTS`` (comma list, ``*``: any), or loopback names plus ``own``
    (the configured ``api_host``, the host of ``api_url``, the interface bound to)."""
    if configured is not None:
        return frozenset(h.strip().lower().strip("[]") for h in configured.split(",")
                         if h.strip())
    wildcard = {"0.0.0.0", "::", ""}  # noqa: S104 -- names no host: never allowed as one
    return LOOPBACK_HOSTS | {h.lower().strip("[]") for h in own if h not in wildcard}


def hostname(value: str) -> str:
    """``example.org:4280`` -> ``example.org``; ``[::1]:4280`` -> ``::1``."""
    try:
        return (urlsplit(f"//{value}").hostname or "").lower()
    except ValueError:
        return ""


def browser_safe(method: str, headers: Mapping[str, str], hosts: frozenset[str]) -> None:
    """Refuse what a web page in an operator's browser could send: a ``Host`` not allowed
    (DNS rebinding: 400), a cross-origin request (403), a POST body that is not JSON (415;
    a form or ``text/plain`` needs no CORS preflight, JSON does)."""
    host = hostname(headers.get("host", ""))
    if ANY_HOST not in hosts and host not in hosts:
        raise Malformed(f"host {host or '(none)'!r} is not allowed; allowed: the configured "
                        "hosts (AXTRACE_ALLOWED_HOSTS)", field="host")
    origin = headers.get("origin")
    if origin is not None and hostname(origin.removeprefix("http://").removeprefix(
            "https://")) not in (hosts - {ANY_HOST}) | {host}:
        raise Forbidden("cross-origin requests are refused", field="origin")
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise Forbidden("cross-site requests are refused", field="sec-fetch-site")
    if method == "POST" and not json_media(headers.get("content-type", "")):
        raise Unsupported("the body must be JSON: application/json", field="content-type")


def json_media(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))
