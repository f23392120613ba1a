"""Webhook signatures: Standard Webhooks (https://www.standardwebhooks.com) and Grafana's HMAC.

Standard Webhooks: the sender signs ``{webhook-id}.{webhook-timestamp}.{body}`` with
HMAC-SHA256 under the secret (``whsec_<base64>``; the prefix is optional) and sends
``webhook-signature: v1,<base64> [v1,<base64> ...]`` (several signatures while a secret is
rotated; other versions such as ``v1a`` are skipped). The timestamp must be within ``tolerance``
seconds (5 minutes) of now either way, which with the ``webhook-id`` as idempotency key stops
replays.

Grafana (contact point "HMAC Signature"): ``X-Grafana-Alerting-Signature`` (configurable) is the
lower-case hex HMAC-SHA256 of the raw body under the secret as UTF-8 text, or of
``{timestamp}:{body}`` when a timestamp header is configured in Grafana (it has no default name,
so pass the one configured, e.g. ``X-Grafana-Alerting-Timestamp``).

Every failure is a :class:`SignatureError` (401) whose ``field`` names the header at fault.
All comparisons are constant-time (``hmac.compare_digest``).

Why not the specification's reference library (``standardwebhooks``) here: it decodes the body
as UTF-8 (a non-UTF-8 body would raise, a 500), raises ``ValueError`` on a malformed signature
list, checks only against the wall clock, and its errors do not name the header. The tests use
it as the oracle instead: what it signs verifies here, and what this signs it produces too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping

from axtrace.errors import Unauthenticated

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
GRAFANA_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of a secret, not a secret
DEFAULT_TOLERANCE = 300
_TIMESTAMP = re.compile(r"[0-9]{1,15}", re.ASCII)
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)


class SignatureError(Unauthenticated):
    """A delivery whose signature cannot be verified; ``field`` names the header at fault."""

    status_code = 401


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one message."""
    mac = hmac.new(_secret_bytes(secret), _signed_content(msg_id, timestamp, body), "sha256")
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def verify_standard_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> str:
    """The verified ``webhook-id`` of a delivery, or :class:`SignatureError`."""
    lower = _lower(headers)
    msg_id = _header(lower, ID_HEADER)
    timestamp = _timestamp(lower, TIMESTAMP_HEADER, now=now, tolerance=tolerance)
    signatures = _v1_signatures(_header(lower, SIGNATURE_HEADER))
    expected = hmac.new(_secret_bytes(secret), _signed_content(msg_id, timestamp, body), "sha256")
    if not any(hmac.compare_digest(expected.digest(), given) for given in signatures):
        raise SignatureError("no signature matches the body", field=SIGNATURE_HEADER)
    return msg_id


def sign_grafana_hmac(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Grafana's signature header value for ``body`` (and ``timestamp`` when one is sent)."""
    content = body if timestamp is None else f"{timestamp}:".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), content, hashlib.sha256).hexdigest()


def verify_grafana_hmac(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
    signature_header: str = GRAFANA_SIGNATURE_HEADER,
    timestamp_header: str | None = None,
) -> None:
    """Check Grafana's HMAC header; with ``timestamp_header``, also the timestamp's age."""
    lower = _lower(headers)
    given = _header(lower, signature_header).strip()
    if not _HEX_SHA256.fullmatch(given):
        raise SignatureError("not a hex HMAC-SHA256 (64 hex digits)", field=signature_header)
    stamp = None
    if timestamp_header is not None:
        stamp = _timestamp(lower, timestamp_header, now=now, tolerance=tolerance)
    expected = sign_grafana_hmac(secret, body, stamp)
    if not hmac.compare_digest(bytes.fromhex(expected), bytes.fromhex(given)):
        raise SignatureError("signature does not match the body", field=signature_header)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _header(lower: dict[str, str], name: str) -> str:
    value = lower.get(name.lower(), "")
    if not value.strip():
        raise SignatureError(f"missing {name} header", field=name)
    return value


def _timestamp(lower: dict[str, str], name: str, *, now: float | None, tolerance: int) -> int:
    text = _header(lower, name).strip()
    if not _TIMESTAMP.fullmatch(text):
        raise SignatureError("not an integer Unix timestamp in seconds", field=name)
    stamp = int(text)
    current = time.time() if now is None else now
    if stamp < current - tolerance:
        raise SignatureError(f"timestamp is more than {tolerance}s old", field=name)
    if stamp > current + tolerance:
        raise SignatureError(f"timestamp is more than {tolerance}s in the future", field=name)
    return stamp


def _v1_signatures(header: str) -> list[bytes]:
    signatures: list[bytes] = []
    for entry in header.split():
        version, comma, encoded = entry.partition(",")
        if not comma or not version:
            raise SignatureError("expected entries like v1,<base64>", field=SIGNATURE_HEADER)
        if version == "v1":
            signatures.append(_b64(encoded, SIGNATURE_HEADER, "signature"))
    if not signatures:
        raise SignatureError("no v1 signature", field=SIGNATURE_HEADER)
    return signatures


def _b64(encoded: str, field: str, what: str) -> bytes:
    try:
        return base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SignatureError(f"{what} is not valid base64", field=field) from None


def _secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret (as the reference libraries read it)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    key = _b64(encoded + "=" * (-len(encoded) % 4), "secret", "the configured secret")
    if not key:
        raise SignatureError("the configured secret is empty", field="secret")
    return key


def _signed_content(msg_id: str, timestamp: int, body: bytes | str) -> bytes:
    data = body.encode("utf-8") if isinstance(body, str) else body
    try:
        prefix = f"{msg_id}.{timestamp}.".encode()
    except UnicodeEncodeError:
        raise SignatureError("webhook-id is not valid text", field=ID_HEADER) from None
    return prefix + data
