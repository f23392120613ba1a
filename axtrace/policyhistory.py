"""Every change of a site's ownership policy on record: when, what (field by field), from where.

    axtrace sites apply ─▶ record(origin="sites apply", actor=<OS user>, where=<sites file>)
    the auditor's pass ──▶ record(origin="prefect-ui") for a policy block on the server that is
                           not the last version on record (edited in the UI, the API, or
                           `prefect block`), at the time Prefect says it was updated

Why the auditor and not a Prefect automation on ``prefect.block-document.updated``: the auditor
already runs every minute with a Prefect client and survives restarts; it catches a change
however it was made (and an apply whose ledger write failed), while an automation would need an
endpoint into AxTrace to call and would miss changes made while AxTrace is down. A change only
a minute old is left to the apply that made it (:data:`APPLY_GRACE`).

Entries are chained across all sites with an HMAC under the ledger key
(:mod:`axtrace.ledger.seal`), so ``axtrace verify --ledger`` finds one edited, removed or
inserted by someone without the key.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from axtrace import ownership
from axtrace.ledger import seal
from axtrace.ledger.models import PolicyChange, utcnow
from axtrace.reports.model import PolicyChangeSeen
from axtrace.sitediff import field_changes, policy_fields

GENESIS = "0" * 64
APPLY_GRACE = timedelta(seconds=60)
POLICY_BLOCK_TYPE = "axtrace-ownership-policy"
PAGE = 200
"""Block documents the Prefect server answers per page at most."""


def changes_between(site: str, before: Mapping[str, Any] | None,
                    after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Field by field, from one pinned policy to the next (every field added for the first)."""
    old = policy_fields(ownership.parse(dict(before))) if before is not None else {}
    new = policy_fields(ownership.parse(dict(after)))
    return [{"field": c.field, "kind": c.kind, "before": c.before, "after": c.after}
            for c in field_changes(site, old, new)]


def entry_hash(key: bytes, entry: PolicyChange) -> str:
    body = json.dumps(
        [entry.prev_hash, entry.seq, entry.site, entry.at.isoformat(), entry.origin,
         entry.actor, entry.where, entry.old_version, entry.new_version, entry.policy,
         entry.changes], sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def last_for(session: Session, site: str) -> PolicyChange | None:
    return session.exec(select(PolicyChange).where(PolicyChange.site == site)
                        .order_by(col(PolicyChange.seq).desc()).limit(1)).first()


def record(
    session: Session, *, site: str, policy: Mapping[str, Any], origin: str, actor: str,
    where: str | None = None, at: datetime | None = None,
) -> PolicyChange | None:
    """Add a change when ``policy`` (pinned form) is not the site's last version on record;
    returns it, or None when nothing changed. The caller commits."""
    last = last_for(session, site)
    version = ownership.version(dict(policy))
    when = (at or utcnow()).astimezone(UTC)
    when = datetime(when.year, when.month, when.day, when.hour, when.minute, when.second,
                    when.microsecond, tzinfo=UTC)  # a plain datetime: Prefect's differ
    if last is not None and last.new_version == version:
        return None
    tip = session.exec(select(PolicyChange).order_by(col(PolicyChange.seq).desc())
                       .limit(1)).first()
    entry = PolicyChange(
        seq=tip.seq + 1 if tip else 1, site=site, at=when, origin=origin,
        actor=actor, where=where, old_version=last.new_version if last else None,
        new_version=version, policy=dict(policy),
        changes=changes_between(site, last.policy if last else None, policy),
        prev_hash=tip.hash if tip else GENESIS, hash="",
    )
    key = seal.ledger_key()
    assert key is not None
    entry.hash = entry_hash(key, entry)
    session.add(entry)
    session.flush()
    return entry


def history(session: Session, *, site: str | None = None,
            since: datetime | None = None) -> Sequence[PolicyChange]:
    query = select(PolicyChange)
    if site:
        query = query.where(PolicyChange.site == site)
    if since:
        query = query.where(col(PolicyChange.at) >= since)
    return session.exec(query.order_by(col(PolicyChange.seq))).all()


def newest_first(session: Session, *, site: str, limit: int) -> Sequence[PolicyChange]:
    """The site's last ``limit`` changes, newest first."""
    return session.exec(select(PolicyChange).where(PolicyChange.site == site)
                        .order_by(col(PolicyChange.seq).desc()).limit(limit)).all()


def in_period(session: Session, *, since: datetime, until: datetime,
              sites: Sequence[str] = ()) -> Sequence[PolicyChange]:
    """Changes made in ``since <= at < until`` (of ``sites``; all when empty), oldest first."""
    query = select(PolicyChange).where(col(PolicyChange.at) >= since,
                                       col(PolicyChange.at) < until)
    if sites:
        query = query.where(col(PolicyChange.site).in_(sites))
    return session.exec(query.order_by(col(PolicyChange.seq))).all()


def public(entry: PolicyChange) -> PolicyChangeSeen:
    """An entry as the API and the report show it (without the policy and the hashes)."""
    return PolicyChangeSeen.model_validate(entry.model_dump(
        exclude={"id", "policy", "prev_hash", "hash"}))


def broken_at(entries: Sequence[PolicyChange], key: bytes) -> int | None:
    """The seq of the first entry whose chain link or HMAC does not hold (all entries, in seq
    order), or None."""
    prev = GENESIS
    for expected, entry in enumerate(entries, start=1):
        if (entry.seq != expected or entry.prev_hash != prev
                or not hmac.compare_digest(entry.hash, entry_hash(key, entry))):
            return entry.seq
        prev = entry.hash
    return None


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def detect_edits(documents: Sequence[Any], session: Session, now: datetime) -> list[PolicyChange]:
    """Record each policy block (Prefect ``BlockDocument``) that is not its site's last version
    on record and was updated more than :data:`APPLY_GRACE` ago: an edit made outside
    ``sites apply``. Blocks that do not validate are left to ``verify``."""
    from pydantic import ValidationError

    from axtrace_blocks import OwnershipPolicy

    found = []
    for document in documents:
        updated = getattr(document, "updated", None) or now
        if not document.name or now - updated < APPLY_GRACE:
            continue
        try:
            policy = ownership.snapshot(OwnershipPolicy.model_validate(document.data))
        except ValidationError:
            continue
        entry = record(session, site=document.name, policy=policy, origin="prefect-ui",
                       actor="unknown", at=updated)
        if entry is not None:
            found.append(entry)
    return found


async def policy_documents(client: Any, *, include_secrets: bool = True) -> list[Any]:
    """Every policy block document on the Prefect server, page by page."""
    documents: list[Any] = []
    while True:
        page = await client.read_block_documents_by_type(
            POLICY_BLOCK_TYPE, offset=len(documents), limit=PAGE,
            include_secrets=include_secrets)
        documents += page
        if len(page) < PAGE:
            return documents
