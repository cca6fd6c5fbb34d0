"""The SQLite backend: durable history in one file, the default store.

Conventions:

* One table ``events`` whose ``seq INTEGER PRIMARY KEY AUTOINCREMENT`` is the
  store-minted sequence; AUTOINCREMENT guarantees a ``seq`` is never reused,
  even after retention deleted the newest rows, so cursors stay unambiguous.
* ``topics`` keeps per topic the event count and ``trimmed_through``, the
  highest ``seq`` retention removed (to detect a history gap after a cursor).
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

import aiosqlite

from ...errors import BackendUnavailableError
from .._types import ReadResult, Retention, StoredEvent
from ._base import LiveListener

__all__ = ["SQLiteBackend"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    event TEXT,
    data TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_topic_seq ON events (topic, seq);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT PRIMARY KEY,
    count INTEGER NOT NULL DEFAULT 0,
    trimmed_through INTEGER NOT NULL DEFAULT 0
);
"""


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

    async def append(self, topic: str, data: str, event: str | None = None) -> StoredEvent:
        db = self._conn()
        async with self._lock:
            now = self._clock()
            try:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    async with db.execute(
                        "INSERT INTO events (topic, event, data, time) VALUES (?, ?, ?, ?) "
                        "RETURNING seq",
                        (topic, event, data, now),
                    ) as cursor:
                        row = await cursor.fetchone()
                    assert row is not None
                    seq = int(row[0])
                    async with db.execute(
                        "INSERT INTO topics (topic, count) VALUES (?, 1) "
                        "ON CONFLICT (topic) DO UPDATE SET count = count + 1 RETURNING count",
                        (topic,),
                    ) as cursor:
                        count_row = await cursor.fetchone()
                    assert count_row is not None
                    limit = self.retention.max_events
                    if limit is not None and int(count_row[0]) > limit:
                        await self._trim_topic(db, topic, int(count_row[0]) - limit)
                    await db.execute("COMMIT")
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise BackendUnavailableError(f"SQLite append failed: {exc}") from exc
            stored = StoredEvent(seq, topic, data, event, now)
            if self._listener is not None:
                self._listener.on_event(stored)
            return stored

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

    async def read(self, topics: Sequence[str], after: int, limit: int) -> ReadResult:
        db = self._conn()
        names = list(dict.fromkeys(topics))
        if not names:
            return ReadResult([])
        marks = ",".join("?" * len(names))
        try:
            async with db.execute(
                f"SELECT seq, topic, data, event, time FROM events "
                f"WHERE topic IN ({marks}) AND seq > ? ORDER BY seq LIMIT ?",
                (*names, after, limit + 1),
            ) as cursor:
                rows = list(await cursor.fetchall())
            async with db.execute(
                f"SELECT coalesce(max(trimmed_through), 0) FROM topics WHERE topic IN ({marks})",
                names,
            ) as cursor:
                trimmed_row = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"SQLite read failed: {exc}") from exc
        events = [StoredEvent(int(r[0]), r[1], r[2], r[3], float(r[4])) for r in rows[:limit]]
        gap = trimmed_row is not None and int(trimmed_row[0]) > after
        return ReadResult(events, gap=gap, more=len(rows) > limit)

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
        max_age = self.retention.max_age
        if max_age is None:
            return 0
        db = self._conn()
        async with self._lock:
            try:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    async with db.execute(
                        "DELETE FROM events WHERE time < ? RETURNING topic, seq",
                        (now - max_age,),
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
                    await db.execute("COMMIT")
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise BackendUnavailableError(f"SQLite prune failed: {exc}") from exc
        return len(rows)
