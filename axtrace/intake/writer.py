"""Writing prepared deliveries to the ledger: group commit on SQLite, a thread each elsewhere.

SQLite has one write lock per database, so the intake's writes queue for it anyway. One
writer thread per process takes what has queued (up to ``MAX_BATCH`` deliveries), writes it in
**one** transaction and commits once; only then is any of them answered. Consecutive
deliveries touch the same index pages, so one commit writes far fewer WAL pages than one per
delivery, and no thread sleeps in SQLite's busy handler waiting for another of this process.

Nothing changes for the sender:

- each delivery is answered after the transaction that holds it committed (durable before
  the 2xx), or gets the error that stopped it (503 from the HTTP layer);
- a delivery repeated within a batch sees the first one (same transaction) and gets its
  answer, as it would a moment later;
- a unique key taken by a racing writer elsewhere (``IntegrityError``) rolls the batch back
  and each of its deliveries is written again alone, with the usual retries;
- a ledger that is locked or away (``OperationalError``) fails the whole batch: each sender
  gets 503 and sends again.

SQLite's own checkpoint (copying the WAL back into the database, with an fsync of each) would
run on the writer thread, inline after the commit that crossed 1,000 WAL pages, and hold every
delivery of the next batch for as long as the disk takes: hundreds of ms on a busy disk, the
intake's whole p99. So the writer turns the automatic checkpoint off for this process's
connections and a thread of its own checkpoints every ``CHECKPOINT_SECONDS`` (``PASSIVE``:
never waits for, nor blocks, a writer).

PostgreSQL (or any other database) takes concurrent writers well: there each delivery is
committed in its own transaction on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import weakref
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError

from axtrace.intake.service import Incoming, Reply, commit, write

MAX_BATCH = 64
"""Deliveries in one transaction at most (a batch is what queued while the last one ran)."""
CHECKPOINT_SECONDS = 1.0
"""How often the checkpoint thread copies the WAL back into the database (SQLite)."""

logger = logging.getLogger(__name__)

Outcome = Reply | BaseException
_Job = tuple[Incoming, "asyncio.Future[Reply]", asyncio.AbstractEventLoop]


class Writer:
    """Commits prepared deliveries; ``await writer.write(incoming)`` answers once durable."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.grouped = engine.dialect.name == "sqlite"
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    async def write(self, incoming: Incoming) -> Reply:
        if not self.grouped:
            return await asyncio.to_thread(commit, self.engine, incoming)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Reply] = loop.create_future()
        self._jobs.put((incoming, answer, loop))
        if self._thread is None:
            with self._starting:
                if self._thread is None:
                    checkpoints_off_the_writer(self.engine)
                    self._thread = threading.Thread(
                        target=self._run, name="axtrace-intake-writer", daemon=True)
                    self._thread.start()
        return await answer

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                outcomes = self._write([incoming for incoming, _answer, _loop in batch])
            except BaseException as exc:  # never leave a sender waiting, never stop the thread
                outcomes = [exc] * len(batch)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Reply],
                                                                Outcome]]] = {}
            for (_incoming, answer, loop), outcome in zip(batch, outcomes, strict=True):
                by_loop.setdefault(loop, []).append((answer, outcome))
            for loop, settled in by_loop.items():  # one wake-up of each loop per batch
                # a closed loop (RuntimeError) has no one waiting any more
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, settled)

    def _write(self, batch: list[Incoming]) -> list[Outcome]:
        try:
            with self.engine.begin() as conn:
                return [write(conn, incoming) for incoming in batch]
        except IntegrityError:
            # a racing writer elsewhere took a unique key: each alone, with retries
            return [_alone(self.engine, incoming) for incoming in batch]
        except Exception as exc:  # the ledger is locked or away: every sender gets 503
            return [exc] * len(batch)


def _alone(engine: Engine, incoming: Incoming) -> Outcome:
    try:
        return commit(engine, incoming)
    except Exception as exc:
        return exc


def _settle(settled: list[tuple[asyncio.Future[Reply], Outcome]]) -> None:
    for answer, outcome in settled:
        if answer.done():  # the request was cancelled (its client went away)
            continue
        if isinstance(outcome, BaseException):
            answer.set_exception(outcome)
        else:
            answer.set_result(outcome)


_checkpointed: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Engines whose checkpoints a thread already takes (one thread per engine, however many
writers share it)."""


def checkpoints_off_the_writer(engine: Engine) -> None:
    """Connections of ``engine`` made from now on do not checkpoint after a commit; a daemon
    thread checkpoints every :data:`CHECKPOINT_SECONDS` instead (one per engine, as the
    writer's own thread, for the life of the process). The pool is emptied so no
    connection made before keeps checkpointing inline."""
    if engine.url.database in (None, "", ":memory:") or engine in _checkpointed:
        return
    _checkpointed.add(engine)

    def no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    event.listen(engine, "connect", no_autocheckpoint)
    engine.dispose(close=False)  # connections in use finish their work, then are dropped
    threading.Thread(target=_checkpoint_forever, args=(engine,), daemon=True,
                     name="axtrace-wal-checkpoint").start()


def _checkpoint_forever(engine: Engine) -> None:
    while True:
        time.sleep(CHECKPOINT_SECONDS)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # a ledger away now is the requests' 503, not a reason to stop
            logger.warning("WAL checkpoint failed; trying again", exc_info=True)
