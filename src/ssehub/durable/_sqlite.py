"""Durable streams in the hub's SQLite file (``--store sqlite:PATH``), in their own tables.

``durable_streams`` holds one row per name (version, metadata JSON, last
access); ``durable_records`` the records, keyed by ``(stream id, end)``
(``WITHOUT ROWID``: a read from an offset is one index range scan).  A
commit is one ``BEGIN IMMEDIATE`` transaction that first re-reads the
versions it was decided on, so it is atomic against every process on the
file.  The connection is aiosqlite's (its own thread: waiting for the file's
write lock never blocks the event loop).

Processes on the file wake each other after a commit with the hub's wake-up
datagrams (:class:`~ssehub.hub.backends._sqlite_wake.WakeChannel`, in their
own registry ``{db}.durable.wake/``); a woken process wakes all its live
readers, who reload.  A lost wake-up costs latency only: waiting readers
are also woken every ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence

import aiosqlite

from ..errors import BackendUnavailableError
from ..hub.backends._sqlite_wake import WakeChannel
from ..hub.backends.sqlite import open_shared_file
from ._model import Record, StreamMeta
from ._store import Change, Notifier, read_step

__all__ = ["SQLiteDurableStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS durable_streams (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    meta TEXT NOT NULL,
    accessed REAL NOT NULL,
    expiring INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS durable_records (
    stream TEXT NOT NULL,
    end_pos INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (stream, end_pos)
) WITHOUT ROWID;
"""

logger = logging.getLogger("ssehub.durable")


class SQLiteDurableStore:
    """See the module docstring."""

    def __init__(self, path: str, *, poll_interval: float = 1.0, wake: bool = True) -> None:
        self.path = path
        self.notifier = Notifier()
        self._poll_interval = poll_interval
        self._db: aiosqlite.Connection | None = None
        self._wake = WakeChannel(f"{path}.durable") if wake else None
        self._poller: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise BackendUnavailableError("the SQLite durable-stream store is not open")
        return self._db

    async def start(self) -> None:
        try:
            db = await open_shared_file(self.path)
            await db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailableError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        self._db = db
        if self._wake is not None:
            self._wake.open(self.notifier.notify_all)
        self._poller = asyncio.get_running_loop().create_task(
            self._poll(), name="ssehub-durable-poll"
        )

    async def aclose(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if self._wake is not None:
            self._wake.close()
        async with self._lock:  # no statement of a reader is under way on the connection
            db, self._db = self._db, None
            if db is not None:
                await db.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            self.notifier.notify_all()

    async def load(self, name: str) -> StreamMeta | None:
        async with (
            self._lock,
            self._conn().execute(
                "SELECT version, meta, accessed FROM durable_streams WHERE name = ?", (name,)
            ) as cursor,
        ):
            row = await cursor.fetchone()
        if row is None:
            return None
        return StreamMeta.loads(row[1], int(row[0]), float(row[2]))

    async def commit(self, changes: Sequence[Change]) -> bool:
        db = self._conn()
        async with self._lock:  # one statement or transaction at a time on this connection
            try:
                await db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                # Another process held the write lock past the busy timeout: decide again.
                logger.warning("durable stream commit: %s; retrying", exc)
                await asyncio.sleep(0.01)
                return False
            try:
                for change in changes:
                    async with db.execute(
                        "SELECT version FROM durable_streams WHERE name = ?", (change.name,)
                    ) as cursor:
                        row = await cursor.fetchone()
                    if (int(row[0]) if row else 0) != change.expected:
                        await db.execute("ROLLBACK")
                        return False
                for change in changes:
                    await self._apply(db, change)
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                raise
        if self._wake is not None:
            self._wake.notify()
        return True

    @staticmethod
    async def _apply(db: aiosqlite.Connection, change: Change) -> None:
        if change.drop is not None:
            await db.execute("DELETE FROM durable_records WHERE stream = ?", (change.drop,))
        meta = change.meta
        if meta is None:
            await db.execute("DELETE FROM durable_streams WHERE name = ?", (change.name,))
            return
        await db.execute(
            "INSERT OR REPLACE INTO durable_streams (name, version, meta, accessed, expiring) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                change.name,
                change.expected + 1,
                meta.dumps(),
                meta.accessed,
                int(meta.ttl is not None or meta.expires_ts is not None),
            ),
        )
        if change.copy is not None:
            source, upto = change.copy
            await db.execute(
                "INSERT INTO durable_records (stream, end_pos, data) "
                "SELECT ?, end_pos, data FROM durable_records WHERE stream = ? AND end_pos <= ?",
                (meta.id, source, upto),
            )
        if change.records:
            await db.executemany(
                "INSERT INTO durable_records (stream, end_pos, data) VALUES (?, ?, ?)",
                [(meta.id, end, data) for end, data in change.records],
            )
        if change.trim_to is not None:
            await db.execute(
                "DELETE FROM durable_records WHERE stream = ? AND end_pos <= ?",
                (meta.id, change.trim_to),
            )

    async def read(self, stream_id: str, after: int, max_bytes: int) -> list[Record]:
        out: list[Record] = []
        size = largest = 0
        db = self._conn()
        while True:
            step = read_step(max_bytes, size, largest)
            async with (
                self._lock,
                db.execute(
                    "SELECT end_pos, data FROM durable_records WHERE stream = ? AND end_pos > ? "
                    "ORDER BY end_pos LIMIT ?",
                    (stream_id, after, step),
                ) as cursor,
            ):
                rows = list(await cursor.fetchall())
            for end, data in rows:
                if out and size + len(data) > max_bytes:
                    return out
                out.append((int(end), bytes(data)))
                size += len(data)
                largest = max(largest, len(data))
                after = int(end)
            if len(rows) < step or size >= max_bytes:
                return out

    async def touch(self, name: str, accessed: float) -> None:
        db = self._conn()
        async with self._lock:
            await db.execute(
                "UPDATE durable_streams SET accessed = ? WHERE name = ?", (accessed, name)
            )

    async def names_with_expiry(self) -> list[str]:
        async with (
            self._lock,
            self._conn().execute(
                "SELECT name FROM durable_streams WHERE expiring = 1 LIMIT 10000"
            ) as cursor,
        ):
            return [str(row[0]) for row in await cursor.fetchall()]
