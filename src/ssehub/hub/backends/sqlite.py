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
  fingerprint; :mod:`._idempotency`) for 24 h; :meth:`SQLiteBackend.prune`
  deletes older rows.
* ``meta.epoch`` is created with the file; a new file means a new epoch.
* WAL journal with ``synchronous=NORMAL``: a committed event survives a process
  crash; an OS crash may lose the last transactions, never corrupt the file.
* Appends are serialized by one lock, so the live feed sees events in ``seq``
  order, before :meth:`SQLiteBackend.append` returns.
"""

from __future__ import annotations

import asyncio
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
from ._idempotency import IDEMPOTENCY_WINDOW, fingerprint, replay, validate_idempotency_key

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

_FORGOTTEN = (
    "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'forgotten_through'), 0)"
)


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
    same moment; its "duplicate column" error is then harmless.
    """
    async with db.execute("PRAGMA table_info(events)") as cursor:
        columns = {str(row[1]) for row in await cursor.fetchall()}
    if "private" not in columns:
        try:
            await db.execute("ALTER TABLE events ADD COLUMN private INTEGER NOT NULL DEFAULT 0")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise


class SQLiteBackend:
    """History in an SQLite file (``":memory:"`` works too, for tests)."""

    def __init__(
        self,
        path: str | Path,
        *,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.retention = retention or Retention()
        self.epoch = ""
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._listener: LiveListener | None = None

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise BackendUnavailableError("the SQLite store is not open")
        return self._db

    @property
    def feed_connected(self) -> bool:
        """True while the store is open: the live feed is a call inside ``append``."""
        return self._db is not None

    async def start(self, listener: LiveListener) -> None:
        db: aiosqlite.Connection | None = None
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, isolation_level=None)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.executescript(_SCHEMA)
            await _migrate(db)
            await db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)",
                (secrets.token_hex(4),),
            )
            async with db.execute("SELECT value FROM meta WHERE key = 'epoch'") as cursor:
                row = await cursor.fetchone()
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                await db.close()
            raise BackendUnavailableError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        assert row is not None
        self.epoch = str(row[0])
        self._db = db
        self._listener = listener

    async def aclose(self) -> None:
        self._listener = None
        db, self._db = self._db, None
        if db is not None:
            await db.close()

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
        db = self._conn()
        async with self._lock:
            now = self._clock()
            try:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    first = await self._first_with_key(db, idempotency_key, now)
                    if first is None:
                        seq = await self._insert(db, topic, data, event, now, private)
                    if first is None and idempotency_key is not None:
                        await db.execute(
                            "INSERT OR REPLACE INTO idempotency (key, seq, fingerprint, time) "
                            "VALUES (?, ?, ?, ?)",
                            (idempotency_key, seq, fingerprint(topic, data, event, private), now),
                        )
                    await db.execute("COMMIT")
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise BackendUnavailableError(f"SQLite append failed: {exc}") from exc
            if first is not None:
                assert idempotency_key is not None
                return replay(idempotency_key, *first, topic, data, event, private)
            stored = StoredEvent(seq, topic, data, event, now, private)
            if self._listener is not None:
                self._listener.on_event(stored)
            return stored

    async def _first_with_key(
        self, db: aiosqlite.Connection, key: str | None, now: float
    ) -> tuple[str, int, float] | None:
        """``(fingerprint, seq, time)`` of the live record of ``key``, if there is one."""
        if key is None:
            return None
        async with db.execute(
            "SELECT fingerprint, seq, time FROM idempotency WHERE key = ? AND time >= ?",
            (key, now - IDEMPOTENCY_WINDOW),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else (str(row[0]), int(row[1]), float(row[2]))

    async def _insert(
        self,
        db: aiosqlite.Connection,
        topic: str,
        data: str,
        event: str | None,
        now: float,
        private: bool,
    ) -> int:
        """Insert one event and apply the count bound; return its ``seq``."""
        async with db.execute(
            "INSERT INTO events (topic, event, data, time, private) VALUES (?, ?, ?, ?, ?) "
            "RETURNING seq",
            (topic, event, data, now, int(private)),
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        async with db.execute(
            f"INSERT INTO topics (topic, count, trimmed_through) VALUES (?, 1, {_FORGOTTEN}) "
            "ON CONFLICT (topic) DO UPDATE SET count = count + 1 RETURNING count",
            (topic,),
        ) as cursor:
            count_row = await cursor.fetchone()
        assert count_row is not None
        limit = self.retention.max_events
        if limit is not None and int(count_row[0]) > limit:
            await self._trim_topic(db, topic, int(count_row[0]) - limit)
        return int(row[0])

    async def _trim_topic(self, db: aiosqlite.Connection, topic: str, excess: int) -> None:
        async with db.execute(
            "DELETE FROM events WHERE seq IN "
            "(SELECT seq FROM events WHERE topic = ? ORDER BY seq LIMIT ?) RETURNING seq",
            (topic, excess),
        ) as cursor:
            removed = [int(r[0]) for r in await cursor.fetchall()]
        if removed:
            await db.execute(
                "UPDATE topics SET count = count - ?, "
                "trimmed_through = max(trimmed_through, ?) WHERE topic = ?",
                (len(removed), max(removed), topic),
            )
            await self._forget_emptied(db, "topic = ? AND count <= 0", (topic,))

    async def _forget_emptied(
        self, db: aiosqlite.Connection, where: str, params: tuple[str, ...] = ()
    ) -> None:
        """Delete the ``topics`` rows ``where`` picks; raise ``forgotten_through`` to their mark."""
        async with db.execute(
            f"DELETE FROM topics WHERE {where} RETURNING trimmed_through", params
        ) as cursor:
            marks = [int(r[0]) for r in await cursor.fetchall()]
        if marks:
            await db.execute(
                "INSERT INTO meta (key, value) VALUES ('forgotten_through', ?) "
                "ON CONFLICT (key) DO UPDATE SET "
                "value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (str(max(marks)),),
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
        max_age = self.retention.max_age
        db = self._conn()
        async with self._lock:
            try:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    await db.execute(
                        "DELETE FROM idempotency WHERE time < ?", (now - IDEMPOTENCY_WINDOW,)
                    )
                    rows = [] if max_age is None else await self._prune_events(db, now - max_age)
                    await db.execute("COMMIT")
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise BackendUnavailableError(f"SQLite prune failed: {exc}") from exc
        return len(rows)

    async def _prune_events(self, db: aiosqlite.Connection, cutoff: float) -> list[Any]:
        """Delete events older than ``cutoff``; update the topics; return the deleted rows."""
        async with db.execute(
            "DELETE FROM events WHERE time < ? RETURNING topic, seq", (cutoff,)
        ) as cursor:
            rows = list(await cursor.fetchall())
        per_topic: dict[str, tuple[int, int]] = {}
        for topic, seq in rows:
            count, high = per_topic.get(topic, (0, 0))
            per_topic[topic] = (count + 1, max(high, int(seq)))
        await db.executemany(
            "UPDATE topics SET count = count - ?, "
            "trimmed_through = max(trimmed_through, ?) WHERE topic = ?",
            [(c, h, t) for t, (c, h) in per_topic.items()],
        )
        if per_topic:
            await self._forget_emptied(db, "count <= 0")
        return rows
