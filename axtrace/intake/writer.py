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

PostgreSQL (or any other database) takes concurrent writers well: there each delivery is
committed in its own transaction on a worker thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from axtrace.intake.service import Incoming, Reply, commit, write

MAX_BATCH = 64
"""Deliveries in one transaction at most (a batch is what queued while the last one ran)."""

_Job = tuple[Incoming, "Future[Reply]"]


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
        return await asyncio.wrap_future(self.submit(incoming))

    def submit(self, incoming: Incoming) -> Future[Reply]:
        """Queue ``incoming`` for the writer thread; the future holds its reply."""
        done: Future[Reply] = Future()
        self._jobs.put((incoming, done))
        if self._thread is None:
            with self._starting:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="axtrace-intake-writer", daemon=True)
                    self._thread.start()
        return done

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except BaseException as exc:  # never leave a sender waiting, never stop the thread
                for _incoming, done in batch:
                    if not done.done():
                        done.set_exception(exc)

    def _write(self, batch: list[_Job]) -> None:
        try:
            with self.engine.begin() as conn:
                replies = [write(conn, incoming) for incoming, _done in batch]
        except IntegrityError:
            if len(batch) == 1:
                batch[0][1].set_result(commit(self.engine, batch[0][0]))
                return
            for incoming, done in batch:  # a racing writer elsewhere: each alone, with retries
                try:
                    done.set_result(commit(self.engine, incoming))
                except Exception as exc:
                    done.set_exception(exc)
            return
        except Exception as exc:
            for _incoming, done in batch:
                done.set_exception(exc)
            return
        for (_incoming, done), reply in zip(batch, replies, strict=True):
            done.set_result(reply)
