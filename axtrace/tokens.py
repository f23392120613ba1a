"""API tokens (responder or read-only, for every site or some): stored hashed, shown once.

Creating the first token writes ``tokens_required`` into the ledger, and nothing clears it:
from then on the API is closed (see :mod:`axtrace.access`) and acting needs a responder
token, even after the last token is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from sqlmodel import Session, col, select

from axtrace.ledger.models import LedgerSetting, ResponderToken, utcnow

PREFIX = "axt_"
SCOPES = ("respond", "read")
TOKENS_REQUIRED = "tokens_required"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(
    session: Session, name: str, *, scope: str = "respond", sites: Sequence[str] = (),
) -> str:
    """A new token for ``name``; only its hash is stored, so this is the one chance to see it.
    ``sites`` empty: every site."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ResponderToken(name=name, token_sha256=digest(token), created_at=utcnow(),
                               scope=scope, sites=sorted(set(sites)) or None))
    if session.get(LedgerSetting, TOKENS_REQUIRED) is None:
        session.add(LedgerSetting(key=TOKENS_REQUIRED, value="true", set_at=utcnow()))
    session.flush()
    return token


def identify(session: Session, token: str) -> ResponderToken | None:
    """The active token row ``token`` is, or None."""
    wanted = digest(token)
    row = session.exec(select(ResponderToken).where(
        ResponderToken.token_sha256 == wanted, col(ResponderToken.revoked_at).is_(None))).first()
    if row is None or not hmac.compare_digest(row.token_sha256, wanted):
        return None
    return row


def active(session: Session) -> Sequence[ResponderToken]:
    return session.exec(select(ResponderToken).where(
        col(ResponderToken.revoked_at).is_(None)).order_by(col(ResponderToken.name))).all()


def required(session: Session) -> bool:
    """Has a token ever been created in this ledger?"""
    return session.get(LedgerSetting, TOKENS_REQUIRED) is not None


def revoke(session: Session, name: str) -> int:
    """Revoke every active token of ``name``; returns how many (tokens stay required)."""
    rows = active(session)
    mine = [row for row in rows if row.name == name]
    for row in mine:
        row.revoked_at = utcnow()
        session.add(row)
    session.flush()
    return len(mine)
