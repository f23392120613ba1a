"""Who may deliver: per-source credentials, checked before anything is stored.

Every credential configured for a source is required: Standard Webhooks signatures (several
secrets accepted, for rotation), Grafana's HMAC header, and a bearer token (the source's own, or
``AXTRACE_INTAKE_TOKEN``, which then guards every intake path). Failures are 401, never 500.
Secrets written ``block:<name>`` are read from the Prefect Secret block ``<name>``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from axtrace.intake.signatures import (
    SignatureError,
    verify_grafana_hmac,
    verify_standard_webhook,
)
from axtrace.settings import Settings

_SECRET_TTL = 60.0
_secret_cache: dict[str, tuple[float, str]] = {}


def reveal(secret: SecretStr) -> str:
    """The secret's value; ``block:<name>`` reads Prefect's Secret block (cached a minute)."""
    value = secret.get_secret_value()
    if not value.startswith("block:"):
        return value
    name = value.removeprefix("block:")
    cached = _secret_cache.get(name)
    if cached and time.monotonic() - cached[0] < _SECRET_TTL:
        return cached[1]
    from prefect.blocks.system import Secret

    block: Any = Secret.load(name)
    loaded = str(block.get())
    _secret_cache[name] = (time.monotonic(), loaded)
    return loaded


def needs_io(source: str, settings: Settings) -> bool:
    """Does checking ``source``'s credentials read a Prefect Secret block (not yet cached)?
    Without one, :func:`authenticate` only hashes and compares: cheap enough to run inline."""
    config = settings.source(source)
    secrets = [*config.signing_secrets, config.grafana_secret, config.token,
               settings.intake_token]
    return any(s is not None and _uncached_block(s) for s in secrets)


def _uncached_block(secret: SecretStr) -> bool:
    value = secret.get_secret_value()
    if not value.startswith("block:"):
        return False
    cached = _secret_cache.get(value.removeprefix("block:"))
    return not (cached and time.monotonic() - cached[0] < _SECRET_TTL)


def authenticate(
    source: str, headers: Mapping[str, str], body: bytes, settings: Settings,
) -> str | None:
    """Check every credential configured for ``source``; return the verified ``webhook-id``."""
    config = settings.source(source)
    webhook_id = headers.get("webhook-id")
    if config.signing_secrets:
        webhook_id = _any_signature(config.signing_secrets, headers, body)
    if config.grafana_secret is not None:
        verify_grafana_hmac(reveal(config.grafana_secret), headers, body,
                            timestamp_header=config.grafana_timestamp_header)
    tokens = [t for t in (config.token, settings.intake_token) if t is not None]
    if tokens:
        _bearer(tokens, headers)
    return webhook_id


def _any_signature(secrets: list[SecretStr], headers: Mapping[str, str], body: bytes) -> str:
    failure: SignatureError | None = None
    for secret in secrets:
        try:
            return verify_standard_webhook(reveal(secret), headers, body)
        except SignatureError as exc:
            failure = exc
    assert failure is not None
    raise failure


def _bearer(tokens: list[SecretStr], headers: Mapping[str, str]) -> None:
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not value:
        raise SignatureError("missing bearer token", field="authorization")
    if not any(hmac.compare_digest(value.encode(), reveal(t).encode()) for t in tokens):
        raise SignatureError("bearer token not accepted", field="authorization")
