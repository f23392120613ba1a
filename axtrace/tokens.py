"""Per-person responder tokens for the API: stored hashed, shown once.

Once any token exists (or ``AXTRACE_REQUIRE_RESPONDER_TOKENS`` is set), acknowledging or
resolving over HTTP needs ``Authorization: Bearer <token>``, and the token decides who acts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from sqlmodel import Session, col, select

from axtrace.ledger.models import ResponderToken, utcnow

PREFIX = "axt_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(session: Session, name: str) -> str:
    """A new token for ``name``; only its hash is stored, so this is the one chance to see it."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ResponderToken(name=name, token_sha256=digest(token), created_at=utcnow()))
    session.flush()
    return token


def identify(session: Session, token: str) -> str | None:
    """The name an active token belongs to, or None."""
    wanted = digest(token)
    row = session.exec(select(ResponderToken).where(
        ResponderToken.token_sha256 == wanted, col(ResponderToken.revoked_at).is_(None))).first()
    if row is None or not hmac.compare_digest(row.token_sha256, wanted):
        return None
    return row.name


def active(session: Session) -> Sequence[ResponderToken]:
    return session.exec(select(ResponderToken).where(
        col(ResponderToken.revoked_at).is_(None)).order_by(col(ResponderToken.name))).all()


def enforced(session: Session, *, required: bool) -> bool:
    return required or session.exec(select(ResponderToken.id).where(
        col(ResponderToken.revoked_at).is_(None)).limit(1)).first() is not None


def revoke(session: Session, name: str) -> int:
    """Revoke every active token of ``name``; returns how many."""
    rows = active(session)
    mine = [row for row in rows if row.name == name]
    for row in mine:
        row.revoked_at = utcnow()
        session.add(row)
    session.flush()
    return len(mine)
