"""Group commit: the SQLite store's writes, many appends per transaction.

One :class:`GroupWriter` owns the process's writing ``sqlite3`` connection.
Callers hand it *jobs* (functions of the connection, e.g.
:func:`._sqlite_writes.append_event`); the jobs queued when the writer runs
share one ``BEGIN IMMEDIATE … COMMIT``, so concurrent publishes cost one
commit between them, and a job's caller resumes only after that commit.

Where a transaction runs:

* **On the event loop**, when the file's write lock is free (the connection's
  busy timeout is 0, so ``BEGIN IMMEDIATE`` answers at once).  A small
  transaction in WAL mode with ``synchronous=NORMAL`` does no ``fsync``; it
  costs tens of microseconds, far less than a hop to a thread.
* **Later, on the loop again**, when another process holds the lock: the
  batch goes back to the head of the queue and is retried after
  :data:`RETRY_DELAYS` (the next loop iteration, then 0.5, 1, 2 and 4 ms
  apart), so jobs queued meanwhile join it; after ``busy_timeout`` seconds
  without the lock the oldest batch fails with
  :class:`~ssehub.errors.BackendUnavailableError`.  (SQLite's own busy handler,
  in a thread, sleeps 1, 2, 5, 10 … 100 ms between tries: with two processes
  appending at once it left each waiting milliseconds for a lock held for
  100 µs.)
* **Exclusive jobs** (:meth:`GroupWriter.exclusive`, e.g. the age prune that
  may delete many rows) always run alone in the thread.

The connection never checkpoints by itself (``wal_autocheckpoint=0``: a
checkpoint ``fsync``\\s, which must not happen on the loop); the backend runs
passive checkpoints from its own thread.

After each commit ``on_commit`` gets the batch's results (in job order, the
exceptions of refused jobs left out) on the event loop, *before* the callers
resume: that is where the live feed delivers this process's own events.  A
job raises a :class:`~ssehub.errors.HubError` only before it writes, so a
refusal fails that job alone; an ``sqlite3.Error`` rolls the whole batch back
and fails every job in it with :class:`~ssehub.errors.BackendUnavailableError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from ...errors import BackendUnavailableError, HubError

__all__ = ["GroupWriter"]

_T = TypeVar("_T")
Job = Callable[[sqlite3.Connection], Any]


#: Seconds between two tries for the file's write lock while another process holds it.
RETRY_DELAYS = (0.0, 0.0005, 0.001, 0.002, 0.004)


class _Busy(Exception):
    """The write lock is held elsewhere (raised only on the loop, where nothing waits)."""


class GroupWriter:
    """Run write jobs on one connection, as many per transaction as are queued."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        on_commit: Callable[[list[Any]], None],
        max_batch: int = 512,
        busy_timeout: float = 5.0,
    ) -> None:
        self._db = db
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._busy_ms = int(busy_timeout * 1000)
        self._busy_timeout = busy_timeout
        #: Loop time of the first failed try for the lock, and tries since (None: not busy).
        self._busy_since: float | None = None
        self._busy_tries = 0
        self._queue: deque[tuple[Job, asyncio.Future[Any]]] = deque()
        self._scheduled = False
        self._in_thread = False
        self._thread_free = asyncio.Event()
        self._thread_free.set()
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "ssehub-sqlite-writer")
        self._closed = False
        #: Transactions committed, and jobs in them (``jobs / commits`` is the mean batch).
        self.commits = 0
        self.jobs = 0
        self.thread_commits = 0
        #: Tries for the write lock that found it held by another process.
        self.busy_retries = 0

    async def write(self, job: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``job`` inside the next shared transaction; return its result after the commit."""
        if self._closed:
            raise BackendUnavailableError("the SQLite store is closed")
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        if not self._scheduled and not self._in_thread:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)
        return await future

    async def exclusive(self, job: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``job`` alone in its own transaction, in the writer's thread."""
        while self._in_thread:
            await self._thread_free.wait()  # a batch is running in the thread
        self._enter_thread()
        try:
            results = await self._in_own_thread([job])
        finally:
            self._leave_thread()
            self._kick()
        result = results[0]
        if isinstance(result, BaseException):
            raise result
        return result  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Refuse new jobs, let the running batch end, stop the thread."""
        self._closed = True
        while self._in_thread:
            await self._thread_free.wait()
        for _job, future in self._queue:
            if not future.done():
                future.set_exception(BackendUnavailableError("the SQLite store is closed"))
        self._queue.clear()
        self._thread.shutdown(wait=True)

    # -- running batches ------------------------------------------------------

    def _kick(self) -> None:
        if self._queue and not self._scheduled and not self._in_thread:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def _take(self) -> list[tuple[Job, asyncio.Future[Any]]]:
        count = min(len(self._queue), self._max_batch)
        return [self._queue.popleft() for _ in range(count)]

    def _run(self) -> None:
        self._scheduled = False
        if self._in_thread or not self._queue or self._closed:
            return
        batch = self._take()
        jobs = [job for job, _future in batch]
        try:
            results = self._transaction(jobs, wait=False)
        except _Busy:
            self._retry_later(batch)
            return
        self._busy_since = None
        self._settle(batch, results)
        self._kick()

    def _retry_later(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        """Another process holds the lock: put ``batch`` back and try again soon."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._busy_since is None:
            self._busy_since, self._busy_tries = now, 0
        elif now - self._busy_since >= self._busy_timeout:
            error = BackendUnavailableError("SQLite store is locked by another writer")
            self._settle(batch, [error] * len(batch))
            self._busy_since = now  # the jobs queued behind it get a timeout of their own
            self._kick()
            return
        self._queue.extendleft(reversed(batch))
        delay = RETRY_DELAYS[min(self._busy_tries, len(RETRY_DELAYS) - 1)]
        self._busy_tries += 1
        self.busy_retries += 1
        self._scheduled = True
        loop.call_later(delay, self._run)

    def _enter_thread(self) -> None:
        self._in_thread = True
        self._thread_free.clear()

    def _leave_thread(self) -> None:
        self._in_thread = False
        self._thread_free.set()

    async def _in_own_thread(self, jobs: list[Job]) -> list[Any]:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._thread, self._transaction, jobs, True)
        except _Busy:
            error = BackendUnavailableError("SQLite store is locked by another writer")
            results = [error] * len(jobs)
        self.thread_commits += 1
        return results

    def _transaction(self, jobs: list[Job], wait: bool) -> list[Any]:
        """Run ``jobs`` in one transaction; their results, or the error for each job."""
        db = self._db
        try:
            if wait:
                db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            try:
                db.execute("BEGIN IMMEDIATE")
            finally:
                if wait:
                    db.execute("PRAGMA busy_timeout = 0")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                raise _Busy from exc
            return [BackendUnavailableError(f"SQLite append failed: {exc}")] * len(jobs)
        except sqlite3.Error as exc:
            return [BackendUnavailableError(f"SQLite append failed: {exc}")] * len(jobs)
        results: list[Any] = []
        try:
            for job in jobs:
                try:
                    results.append(job(db))
                except HubError as exc:
                    results.append(exc)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            error = BackendUnavailableError(f"SQLite append failed: {exc}")
            error.__cause__ = exc
            return [error] * len(jobs)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        self.commits += 1
        self.jobs += len(jobs)
        return results

    def _settle(self, batch: list[tuple[Job, asyncio.Future[Any]]], results: list[Any]) -> None:
        committed = [r for r in results if not isinstance(r, BaseException)]
        if committed:
            self._on_commit(committed)
        for (_job, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
