"""Keyed seals on every alert: what someone who can write to the database cannot forge.

Each alert's steps are hash-chained with plain SHA-256, so anyone holding an export can check
them without a secret. But a database writer could rewrite a step and recompute that chain, or
change an alert's outcome. Two HMAC-SHA256 seals on the alert row, made with a key kept
outside the ledger database, close that:

- ``trace_seal`` covers the alert id, the trace's length and its last hash (which chains every
  step): a rewritten, cut or extended trace no longer matches it.
- ``state_seal`` covers the alert's decisive columns (:data:`SEALED`): who acknowledged and
  resolved it, with which outcome, its status, level and deadlines.

Every ORM flush re-seals the alerts it writes (:func:`before_flush`, registered with the
models); the intake's Core insert seals its rows itself. ``axtrace verify --ledger`` recomputes
both seals for every alert.

The key: ``AXTRACE_LEDGER_KEY`` (or ``block:<name>`` for a Prefect Secret block), else the file
``<AXTRACE_HOME>/ledger.key``, created with mode 0600 by the first process that needs it. Every
process writing one ledger must hold the same key (scaled out: set ``AXTRACE_LEDGER_KEY``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from axtrace.errors import Unavailable
from axtrace.settings import Settings, get_settings

KEY_FILE = "ledger.key"
SEALED = (
    "site", "source", "key", "received_at", "status", "outcome", "level", "owner",
    "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "closed_at",
    "ack_deadline", "resolve_deadline", "remind_at", "overdue_at",
)
"""The alert columns :func:`state_seal` covers (the figures and the verdict rest on them)."""

_keys: dict[tuple[str | None, Path], bytes] = {}


class NoLedgerKey(Unavailable):
    """The ledger key is not given and cannot be created or read."""


def key_path(settings: Settings) -> Path:
    return settings.home.expanduser() / KEY_FILE


def ledger_key(settings: Settings | None = None, *, create: bool = True) -> bytes | None:
    """This process's ledger key; with ``create``, the key file is made when there is none
    (atomically: two processes starting together end up with the same key)."""
    settings = settings or get_settings()
    given = settings.ledger_key.get_secret_value() if settings.ledger_key else None
    cache = (given, key_path(settings))
    if cache not in _keys:
        key = _given(settings) if given else _from_file(key_path(settings), create=create)
        if key is None:
            return None
        _keys[cache] = key
    return _keys[cache]


def _given(settings: Settings) -> bytes:
    from axtrace.intake.auth import reveal

    assert settings.ledger_key is not None
    return reveal(settings.ledger_key).encode()


def _from_file(path: Path, *, create: bool) -> bytes | None:
    try:
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_new(path)
        return path.read_bytes().strip() if path.exists() else None
    except OSError as exc:
        raise NoLedgerKey(f"AXTRACE_LEDGER_KEY is not set and {path} cannot be used: {exc}",
                          field="AXTRACE_LEDGER_KEY") from exc


def _write_new(path: Path) -> None:
    """A new random key, written once: the loser of a race keeps the winner's file. The key
    is written whole to a file of this process's own first and then linked to ``path`` (a
    link never replaces a file), so no process ever reads a key file still being written."""
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def _mac(key: bytes, parts: list[Any]) -> str:
    body = json.dumps(parts, separators=(",", ":"), default=_plain)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    return str(value)


def trace_seal(key: bytes, *, alert_id: int | None, trace_len: int, trace_head: str) -> str:
    return _mac(key, ["trace", alert_id, trace_len, trace_head])


def state_seal(key: bytes, columns: Mapping[str, Any]) -> str:
    return _mac(key, ["state", *(columns.get(name) for name in SEALED)])


def seals(key: bytes, alert_id: int | None, columns: Mapping[str, Any]) -> dict[str, str]:
    """Both seals of an alert whose column values are ``columns``."""
    return {
        "trace_seal": trace_seal(key, alert_id=alert_id, trace_len=columns["trace_len"],
                                 trace_head=columns["trace_head"]),
        "state_seal": state_seal(key, columns),
    }


def before_flush(session: Any, _context: Any, _instances: Any) -> None:
    """Re-seal every alert this flush inserts or updates (SQLAlchemy ``before_flush``)."""
    alerts = [row for row in (*session.new, *session.dirty) if hasattr(row, "state_seal")]
    if not alerts:
        return
    key = ledger_key()
    assert key is not None
    for alert in alerts:
        columns = {name: getattr(alert, name) for name in (*SEALED, "trace_len", "trace_head")}
        for name, value in seals(key, alert.id, columns).items():
            setattr(alert, name, value)
