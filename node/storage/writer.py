"""The one writer of a process.

Every change to the database goes through :class:`Writer`. Concurrent requests hand it
*units of work* (plain functions over a SQLAlchemy ``Connection``); a dedicated thread
takes whatever units are waiting, runs them in one transaction, commits once, and then
tells each caller whether its unit was committed or why it failed.

Each unit behaves as if it ran in its own savepoint: one failing unit is left out and
does not sink the others; a failed commit fails every unit of the batch. The savepoints
are taken only when needed: the batch first runs without them, and only if a unit
fails is it rolled back and run again with a savepoint around each unit (a savepoint
is a round trip on PostgreSQL, and most batches have no failure). So **a unit may run
more than once before it is committed**: it must only touch the database through the
connection it is given, and keep any other effect (a wake-up, a log line) for its
caller, after the commit.

Why a thread and not an async driver: a unit is a handful of statements, and an
async driver pays an event-loop hop for each of them (aiosqlite caps near 1,200 commits
per second), while one hop per *batch* and one commit (one fsync) per batch lets SQLite
commit many thousands of units per second. The same code runs on PostgreSQL, where the
thread keeps network round trips off the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from node.errors import NodeError, ServiceUnavailable
from node.storage.rows import PreparedRow

T = TypeVar("T")
Unit = Callable[[Connection], T]

log = logging.getLogger(__name__)


class WriterClosed(ServiceUnavailable, RuntimeError):
    """The writer was stopped before it could run this unit."""


class CommitFailed(NodeError, RuntimeError):
    """The unit ran, but the transaction holding it could not be committed."""


@dataclass(slots=True)
class _Job:
    # Either a unit of work or one row for a prepared insert (see node.storage.rows).
    unit: Unit[Any] | None
    # Exactly one of the two is set: an asyncio future (with its loop) or a
    # concurrent future for callers outside an event loop.
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | concurrent.futures.Future[Any]
    result: Any = None
    error: BaseException | None = field(default=None)
    row: tuple[PreparedRow, tuple[Any, ...]] | None = None


_STOP = object()


class Writer:
    """Groups concurrent units of work into shared transactions on one connection."""

    def __init__(self, engine: Engine, *, max_batch: int = 1000, name: str = "coopnode-writer"):
        self._engine = engine
        self._max_batch = max_batch
        self._name = name
        self._queue: queue.SimpleQueue[list[_Job] | object] = queue.SimpleQueue()
        # Jobs of the current iteration of each event loop, not yet handed over.
        self._gathered: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self._connection: Connection | None = None
        self.batches = 0
        self.units = 0
        self.reruns = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()

    async def run(self, unit: Unit[T]) -> T:
        """Run ``unit`` in the next batch; return its result once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._gather(loop, _Job(unit, loop, future))
        return await future

    async def insert(self, prepared: PreparedRow, params: tuple[Any, ...]) -> None:
        """Insert one row with ``prepared`` in the next batch; return once committed.

        The rows of one insert that wait together go in multi-row statements. A row
        the database refuses fails alone, as a unit would, with the driver's exception.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._gather(loop, _Job(None, loop, future, row=(prepared, params)))
        await future

    def run_sync(self, unit: Unit[T]) -> T:
        """Like :meth:`run`, for callers outside an event loop (the command line)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("a unit of work cannot wait for another unit of work")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._submit([_Job(unit, None, future)])
        return future.result()

    def _gather(self, loop: asyncio.AbstractEventLoop, job: _Job) -> None:
        """Hand the jobs of one event-loop iteration to the thread together.

        Waking the writer thread costs both threads more than a row costs to write, and
        each wake-up is also a hand-over of the interpreter lock. Under load one loop
        iteration serves many requests; their jobs travel as one item, so the thread
        wakes once for them all.
        """
        if self._closed:
            raise WriterClosed("the database writer is stopped")
        gathered = self._gathered.get(loop)
        if gathered is None:
            self._gathered[loop] = [job]
            loop.call_soon(self._hand_over, loop)
        else:
            gathered.append(job)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs = self._gathered.pop(loop, [])
        try:
            self._submit(jobs)
        except WriterClosed as exc:
            for job in jobs:
                job.error = exc
            _settle_in_loop(jobs)

    def _submit(self, jobs: list[_Job]) -> None:
        if self._closed:
            raise WriterClosed("the database writer is stopped")
        if self._thread is None:
            self.start()
        self._queue.put(jobs)

    def close(self) -> None:
        """Finish the units already queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    # -- the writer thread -------------------------------------------------------------

    def _main(self) -> None:
        pending: list[_Job] = []
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                assert isinstance(item, list)
                pending = item
                stop = False
                while len(pending) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    assert isinstance(item, list)
                    pending.extend(item)
                self._run_batch(pending)
                _settle(pending)
                pending = []
                if stop:
                    return
        finally:
            # Whatever stopped the thread, nobody may wait forever for a unit.
            leftovers = pending
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, list):
                    leftovers.extend(item)
            for job in leftovers:
                # An interrupted batch was rolled back: none of its units took effect.
                job.result = None
                job.error = WriterClosed("the database writer stopped")
            _settle(leftovers)
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _conn(self) -> Connection:
        if self._connection is None or self._connection.invalidated:
            if self._connection is not None:
                self._connection.close()
            self._connection = self._engine.connect().execution_options(sqlite_immediate=True)
        return self._connection

    def _run_batch(self, jobs: list[_Job]) -> None:
        self.batches += 1
        self.units += len(jobs)
        try:
            conn = self._conn()
            transaction = conn.begin()
            try:
                failed = _run_optimistically(conn, jobs)
                if failed is not None and len(jobs) == 1:
                    # The transaction itself bounded the lone unit: nothing else to keep.
                    transaction.rollback()
                    return
                if failed is not None:
                    # One unit failed: undo the batch and run it again with a savepoint
                    # around each unit, so that only the failing ones are left out.
                    transaction.rollback()
                    self.reruns += 1
                    transaction = conn.begin()
                    for job in jobs:
                        job.result, job.error = None, None
                        _run_in_savepoint(conn, job)
                transaction.commit()
            finally:
                if transaction.is_active:
                    transaction.rollback()
        except Exception as exc:  # the transaction could not begin or commit
            log.warning("a transaction of %d units of work failed: %s", len(jobs), exc)
            for job in jobs:
                job.result = None
                if job.error is None:
                    failure = CommitFailed(f"the transaction was not committed: {exc}")
                    failure.__cause__ = exc
                    job.error = failure
            # Start the next batch on a fresh connection: whatever state this one was
            # left in (an aborted transaction, a lost server) must not leak into it.
            self._discard_connection()

    def _discard_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()
                connection.close()


def _run_optimistically(conn: Connection, jobs: list[_Job]) -> _Job | None:
    """Run every unit with no savepoint (the common case: they all succeed); stop at the
    first failure and return its job. Savepoints cost a round trip each on PostgreSQL.

    Rows go first, in a few multi-row statements per insert; then the units. The jobs of
    one batch were submitted concurrently, so their order within it means nothing.
    """
    groups: dict[PreparedRow, list[_Job]] = {}
    for job in jobs:
        if job.row is not None:
            groups.setdefault(job.row[0], []).append(job)
    if groups:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for prepared, row_jobs in groups.items():
                rows = [job.row[1] for job in row_jobs]  # type: ignore[index]
                try:
                    for sql, params in prepared.statements(rows):
                        cursor.execute(sql, params)
                except Exception as exc:
                    # Which row failed is unknown: the re-run with savepoints will tell.
                    row_jobs[0].error = exc
                    return row_jobs[0]
        finally:
            cursor.close()
    for job in jobs:
        if job.unit is None:
            continue
        try:
            job.result = job.unit(conn)
        except Exception as exc:
            job.error = exc
            return job
    return None


def _run_in_savepoint(conn: Connection, job: _Job) -> None:
    # SAVEPOINT through the driver's cursor: SQLAlchemy's begin_nested() costs about
    # 200 microseconds of bookkeeping per unit, which capped SQLite near 4,000 units/s.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("SAVEPOINT coopnode_unit")
        try:
            if job.row is not None:
                cursor.execute(job.row[0].sql(1), job.row[1])
            else:
                assert job.unit is not None
                job.result = job.unit(conn)
        except Exception as exc:
            job.error = exc
            cursor.execute("ROLLBACK TO SAVEPOINT coopnode_unit")
        cursor.execute("RELEASE SAVEPOINT coopnode_unit")
    finally:
        cursor.close()


def _settle(jobs: list[_Job]) -> None:
    """Hand each result to its caller: one wake-up per event loop, not one per unit."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        if job.loop is None:
            future = job.future
            assert isinstance(future, concurrent.futures.Future)
            if job.error is not None:
                future.set_exception(job.error)
            else:
                future.set_result(job.result)
        else:
            by_loop.setdefault(job.loop, []).append(job)
    for loop, loop_jobs in by_loop.items():
        # A closed event loop raises RuntimeError: nobody is waiting there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_in_loop, loop_jobs)


def _settle_in_loop(jobs: list[_Job]) -> None:
    for job in jobs:
        future = job.future
        assert isinstance(future, asyncio.Future)
        if future.done():  # the caller was cancelled
            continue
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.result)
