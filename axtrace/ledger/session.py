"""Sessions on the ledger of this process (URL from settings)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from axtrace.ledger.db import engine_for
from axtrace.settings import get_settings

T = TypeVar("T")


@contextmanager
def ledger_session() -> Iterator[Session]:
    settings = get_settings()
    engine = engine_for(settings.ledger_url, settings.db_busy_timeout)
    with Session(engine, expire_on_commit=False) as session:
        yield session


def in_transaction(work: Callable[[Session], T], *, attempts: int = 6) -> T:
    """Run ``work`` in its own committed transaction, retrying when a racing writer wins.

    Racing appends to one trace collide on the unique (alert, seq) and SQLite may report a
    busy database; both are retried with a short backoff. Other errors propagate.
    """
    for attempt in range(attempts):
        try:
            with ledger_session() as session:
                result = work(session)
                session.commit()
                return result
        except (IntegrityError, OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")
