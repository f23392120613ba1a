"""Writing prepared deliveries to the ledger: group commit on SQLite, a thread each elsewhere.

SQLite has one write lock per database, so the intake's writes queue for it anyway. What
queued during one turn of the event loop (up to ``MAX_BATCH`` deliveries) is written in
**one** transaction and committed once; only then is any of them answered. Consecutive
deliveries touch the same index pages, so one commit writes far fewer WAL pages than one per
delivery.

That transaction runs on the event loop itself, with a busy timeout of zero (``fast``): a
free write lock is taken at once, and SQLite in WAL mode with ``synchronous=NORMAL`` does not
wait for the disk at commit, so it holds the loop well under a millisecond per delivery and
costs no hand-over between threads. When the lock is held elsewhere (another process, a
checkpoint) the batch is rolled back and handed to the writer thread, which waits for the
lock as every ledger writer does (``db_busy_timeout``) without holding up the loop.

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
import contextlib
import queue
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from axtrace.intake.service import Incoming, Reply, commit, write

MAX_BATCH = 64
"""Deliveries in one transaction at most (a batch is what queued while the last one ran)."""

Outcome = Reply | BaseException
_Job = tuple[Incoming, "asyncio.Future[Reply]", asyncio.AbstractEventLoop]


class Writer:
    """Commits prepared deliveries; ``await writer.write(incoming)`` answers once durable."""

    def __init__(self, engine: Engine, *, fast: Engine | None = None) -> None:
        self.engine = engine
        self.fast = fast
        self.grouped = engine.dialect.name == "sqlite"
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._pending: list[_Job] = []

    async def write(self, incoming: Incoming) -> Reply:
        if not self.grouped:
            return await asyncio.to_thread(commit, self.engine, incoming)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Reply] = loop.create_future()
        if self.fast is not None:
            if not self._pending:
                loop.call_soon(self._on_loop)
            self._pending.append((incoming, answer, loop))
        else:
            self._to_thread([(incoming, answer, loop)])
        return await answer

    def _on_loop(self) -> None:
        """Write what queued in this turn of the loop, on the loop, if the lock is free now."""
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if self._pending:
            batch[0][2].call_soon(self._on_loop)
        assert self.fast is not None
        try:
            with self.fast.begin() as conn:
                replies = [write(conn, incoming) for incoming, _answer, _loop in batch]
        except Exception:  # locked elsewhere, a racing unique key, the ledger away: the
            self._to_thread(batch)  # writer thread waits, retries or fails it (503)
            return
        _settle([(answer, reply) for (_incoming, answer, _loop), reply
                 in zip(batch, replies, strict=True)])

    def _to_thread(self, jobs: list[_Job]) -> None:
        for job in jobs:
            self._jobs.put(job)
        if self._thread is None:
            with self._starting:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="axtrace-intake-writer", daemon=True)
                    self._thread.start()

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
