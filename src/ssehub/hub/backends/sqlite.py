"""The SQLite backend: durable history in one file, the default store.

Conventions:

* One table ``events`` whose ``seq INTEGER PRIMARY KEY AUTOINCREMENT`` is the
  store-minted sequence; AUTOINCREMENT guarantees a ``seq`` is never reused,
  even after retention deleted the newest rows, so cursors stay unambiguous.
* ``topics`` keeps per topic the event count and ``trimmed_through``, the
  highest ``seq`` retention removed (to detect a history gap after a cursor).
  A topic whose last event retention removed loses its row; ``meta``'s
  ``forgotten_through`` keeps the highest trim mark of such topics, and a new
  row starts from it (the gap convention of :mod:`._base`).  So ``topics``
  holds exactly the topics that have events.
* Reads fetch rows in steps sized to the bytes left (at most
  :data:`_FETCH_STEP` rows) and stop at the byte bound
  (:func:`._base.event_size`); the merge of several topics sorts
  only ``seq`` values (a subquery on the covering index), never whole rows.
* ``idempotency`` keeps one row per idempotency key (key, ``seq``, ``time``,
  fingerprint; :mod:`._idempotency`) for 24 h, at most
  ``max_idempotency_keys`` rows (the oldest forgotten first, counted in
  ``meta.idempotency_keys``); :meth:`SQLiteBackend.prune` deletes older rows.
* Quotas (:mod:`._quota`) are checked inside the write transaction, against
  the file's ``topics`` rows and ``meta.stored_bytes`` (the bytes of the
  events held, kept by every write): the counts of every process on the file.
* ``meta.epoch`` is created with the file; a new file means a new epoch.
* Writes go through one :class:`._sqlite_writer.GroupWriter` per process:
  appends queued at the same time share one transaction (group commit); the
  transaction bodies are :mod:`._sqlite_writes`.  Reads (``read``, ``head``)
  and checkpoints use an ``aiosqlite`` connection (a thread of their own).
* Durability: WAL journal with ``synchronous=NORMAL``.  ``append`` returns
  after its transaction committed, i.e. after its WAL frames were written to
  the operating system.  A *process* crash (SIGKILL, OOM) loses nothing that
  was acknowledged.  A *power loss or OS crash* may lose the transactions
  committed since the last checkpoint's ``fsync`` of the WAL (this backend
  runs a passive checkpoint about once a second while there are writes, and
  SQLite fsyncs the WAL before each one), never corrupts the file, and never
  loses a part of a transaction: a lost event takes every later one with it,
  so ``seq`` stays contiguous and cursors stay exact.
* Live feed (:mod:`._sqlite_feed`): any number of processes may share the
  file; each delivers every event, its own and the others', exactly once and
  in ``seq`` order, woken by the others' datagrams (:mod:`._sqlite_wake`) and
  a timer.  Its own events are delivered before ``append`` returns unless
  another process committed in between (then within one loop turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from ...errors import BackendUnavailableError
from .._types import ReadResult, Retention, StoredEvent
from ._base import LiveListener, event_size
from ._idempotency import validate_idempotency_key
from ._sqlite_feed import SQLiteFeed
from ._sqlite_wake import WakeChannel
from ._sqlite_writer import GroupWriter
from ._sqlite_writes import FORGOTTEN, SIZE, Append, append_event, prune_store

__all__ = ["SQLiteBackend"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    event TEXT,
    data TEXT NOT NULL,
    time REAL NOT NULL,
    private INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_topic_seq ON events (topic, seq);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT PRIMARY KEY,
    count INTEGER NOT NULL DEFAULT 0,
    trimmed_through INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    time REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_time ON idempotency (time);
"""

#: Most rows fetched from SQLite per step of a read.
_FETCH_STEP = 64

_FORGOTTEN = FORGOTTEN

#: Seconds between passive WAL checkpoints while there are writes.
_CHECKPOINT_INTERVAL = 1.0

logger = logging.getLogger("ssehub.hub.sqlite")


async def open_shared_file(path: str) -> aiosqlite.Connection:
    """An aiosqlite connection to the store's file: autocommit, WAL, 5 s busy timeout.

    Also used by the durable-stream store (:mod:`ssehub.durable`), which keeps its
    own tables in the same file.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        await db.close()
        raise
    return db


def _connect(path: str) -> sqlite3.Connection:
    """A plain connection for the writer or the feed: autocommit, no busy wait, no checkpoints."""
    db = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    return db


def _next_step(max_bytes: int | None, size: int, largest: int) -> int:
    """How many rows to fetch next: as many as fit the bytes left, by the largest row seen.

    So a read holds at most about ``max_bytes`` plus one row in this process.
    """
    if max_bytes is None:
        return _FETCH_STEP
    return max(1, min(_FETCH_STEP, (max_bytes - size) // max(largest, 1)))


def _read_sql(topics: int) -> str:
    """The read of ``topics`` topics: ``seq`` values sorted in a subquery, rows by primary key.

    Parameters: the topic names, ``after``, ``limit``.  Only the subquery
    sorts, and it sorts integers from the covering index ``events_topic_seq``;
    the outer query fetches each row by ``seq`` in order, so SQLite never
    holds more than the row being stepped over.
    """
    marks = ",".join("?" * topics)
    return (
        f"SELECT seq, topic, data, event, time, private FROM events WHERE seq IN "
        f"(SELECT seq FROM events WHERE topic IN ({marks}) AND seq > ? ORDER BY seq LIMIT ?) "
        f"ORDER BY seq"
    )


async def _migrate(db: aiosqlite.Connection) -> None:
    """Bring a file written by an older version up to the current schema.

    Files from before private events have no ``events.private`` column: it is
    added (every old event is public).  Another process may add it at the
    same moment; its "duplicate column" error is then harmless.  Files from
    before quotas have no ``meta.stored_bytes``: it is counted from the rows,
    in one statement (so it is created once, whoever creates it), and so is
    ``meta.idempotency_keys``.
    """
    async with db.execute("PRAGMA table_info(events)") as cursor:
        columns = {str(row[1]) for row in await cursor.fetchall()}
    if "private" not in columns:
        try:
            await db.execute("ALTER TABLE events ADD COLUMN private INTEGER NOT NULL DEFAULT 0")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise
    await db.execute(
        "INSERT OR IGNORE INTO meta (key, value) "
        f"SELECT 'stored_bytes', coalesce(sum({SIZE}), 0) FROM events"
    )
    await db.execute(
        "INSERT OR IGNORE INTO meta (key, value) "
        "SELECT 'idempotency_keys', count(*) FROM idempotency"
    )


class SQLiteBackend:
    """History in an SQLite file, shared by any number of processes on one machine."""

    def __init__(
        self,
        path: str | Path,
        *,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.5,
        wake: bool = True,
        max_idempotency_keys: int = 100_000,
    ) -> None:
        self.path = str(path)
        self._max_keys = max_idempotency_keys
        self.retention = retention or Retention()
        self.epoch = ""
        self._clock = clock
        self._poll_interval = poll_interval
        self._use_wake = wake
        self._db: aiosqlite.Connection | None = None
        self._writer: GroupWriter | None = None
        self._writer_db: sqlite3.Connection | None = None
        self._feed_db: sqlite3.Connection | None = None
        self.feed: SQLiteFeed | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise BackendUnavailableError("the SQLite store is not open")
        return self._db

    @property
    def feed_connected(self) -> bool:
        """True while the store is open and the feed's last read of the file succeeded."""
        return self._db is not None and self.feed is not None and self.feed.healthy

    async def start(self, listener: LiveListener) -> None:
        if self.path == ":memory:":
            raise BackendUnavailableError(
                "an SQLite store needs a file (several connections share it); use memory instead"
            )
        db: aiosqlite.Connection | None = None
        try:
            db = await open_shared_file(self.path)
            await db.executescript(_SCHEMA)
            await _migrate(db)
            await db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)",
                (secrets.token_hex(4),),
            )
            async with db.execute("SELECT value FROM meta WHERE key = 'epoch'") as cursor:
                row = await cursor.fetchone()
            async with db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'"
            ) as cursor:
                head_row = await cursor.fetchone()
            writer_db = _connect(self.path)
            feed_db = _connect(self.path)
            feed_db.execute("PRAGMA query_only=1")
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                await db.close()
            raise BackendUnavailableError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        assert row is not None
        self.epoch = str(row[0])
        self._db = db
        self._writer_db, self._feed_db = writer_db, feed_db
        self.feed = SQLiteFeed(
            feed_db,
            listener,
            last=int(head_row[0]) if head_row is not None else 0,
            wake=WakeChannel(self.path) if self._use_wake else None,
            poll_interval=self._poll_interval,
        )
        self._writer = GroupWriter(writer_db, on_commit=self._committed)
        self.feed.start()
        self._stopping.clear()
        self._checkpointer = asyncio.get_running_loop().create_task(
            self._checkpoint_loop(), name="ssehub-sqlite-checkpoint"
        )

    async def aclose(self) -> None:
        feed, self.feed = self.feed, None
        writer, self._writer = self._writer, None
        checkpointer, self._checkpointer = self._checkpointer, None
        self._stopping.set()
        if checkpointer is not None:
            await checkpointer  # never cancelled mid-checkpoint: aiosqlite would answer late
        if writer is not None:
            await writer.aclose()
        if feed is not None:
            await feed.aclose()
        for conn in (self._writer_db, self._feed_db):
            if conn is not None:
                conn.close()
        self._writer_db = self._feed_db = None
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    def _committed(self, results: list[Any]) -> None:
        """The group writer committed: the feed delivers this process's new events."""
        if self.feed is not None:
            self.feed.local([r for r in results if isinstance(r, StoredEvent) and not r.replayed])

    async def _checkpoint_loop(self) -> None:
        """Passive WAL checkpoints (they never block writers) while there are writes."""
        seen = 0
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), _CHECKPOINT_INTERVAL)
                return
            writer = self._writer
            if writer is None or writer.commits == seen:
                continue
            seen = writer.commits
            try:
                await self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except (sqlite3.Error, BackendUnavailableError) as exc:
                logger.debug("checkpoint failed: %s", exc)

    async def append(
        self,
        topic: str,
        data: str,
        event: str | None = None,
        *,
        idempotency_key: str | None = None,
        private: bool = False,
    ) -> StoredEvent:
        if idempotency_key is not None:
            validate_idempotency_key(idempotency_key)
        writer = self._writer
        if writer is None:
            raise BackendUnavailableError("the SQLite store is not open")
        job = Append(topic, data, event, idempotency_key, self._clock(), private)
        return await writer.write(
            functools.partial(
                append_event, job=job, retention=self.retention, max_keys=self._max_keys
            )
        )

    async def read(
        self, topics: Sequence[str], after: int, limit: int, max_bytes: int | None = None
    ) -> ReadResult:
        db = self._conn()
        names = list(dict.fromkeys(topics))
        if not names or limit <= 0:
            return ReadResult([])
        marks = ",".join("?" * len(names))
        events: list[StoredEvent] = []
        more = False
        size = 0
        try:
            # Rows are read after the cursor in seq order; a row that retention
            # deletes meanwhile raises its topic's mark, which is read last.
            async with db.execute(_read_sql(len(names)), (*names, after, limit + 1)) as cursor:
                step, largest = 1, 0
                while not more:
                    rows = await cursor.fetchmany(step)
                    if not rows:
                        break
                    for seq, topic, data, event, when, private in rows:
                        if len(events) >= limit:
                            more = True
                            break
                        bytes_ = event_size(data, event)
                        largest = max(largest, bytes_)
                        size += bytes_
                        if max_bytes is not None and events and size > max_bytes:
                            more = True
                            break
                        events.append(
                            StoredEvent(int(seq), topic, data, event, float(when), bool(private))
                        )
                    step = _next_step(max_bytes, size, largest)
            async with db.execute(
                f"SELECT count(*), coalesce(max(trimmed_through), 0), {_FORGOTTEN} "
                f"FROM topics WHERE topic IN ({marks})",
                names,
            ) as cursor:
                known, trimmed, forgotten = await cursor.fetchone() or (0, 0, 0)
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"SQLite read failed: {exc}") from exc
        gap = int(trimmed) > after or (int(known) < len(names) and int(forgotten) > after)
        return ReadResult(events, gap=gap, more=more)

    async def head(self) -> int:
        db = self._conn()
        try:
            async with db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'"
            ) as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"SQLite read failed: {exc}") from exc
        return int(row[0]) if row is not None else 0

    async def prune(self, now: float) -> int:
        """Apply the age bound, forget emptied topics and expired idempotency keys."""
        writer = self._writer
        if writer is None:
            raise BackendUnavailableError("the SQLite store is not open")
        retention = self.retention
        return await writer.exclusive(lambda db: prune_store(db, retention, now))
