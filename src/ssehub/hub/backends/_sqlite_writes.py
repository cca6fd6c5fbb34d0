"""The SQLite store's writes, as plain functions of an open ``sqlite3`` connection.

Each function runs *inside* a transaction its caller began (``BEGIN
IMMEDIATE``, see :mod:`._sqlite_writer`) and commits nothing itself, so many
of them can share one commit.  They touch only the schema of
:mod:`.sqlite` (drawn in its docstring).

An append that refuses (an idempotency conflict) raises before it writes a
row, so a refusal never spoils the other appends of its transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .._types import Retention, StoredEvent
from ._idempotency import IDEMPOTENCY_WINDOW, fingerprint, replay

__all__ = ["Append", "append_event", "prune_store"]

FORGOTTEN = "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'forgotten_through'), 0)"


@dataclass(frozen=True, slots=True)
class Append:
    """One event to store (its key already validated), stamped ``time`` by the caller."""

    topic: str
    data: str
    event: str | None
    idempotency_key: str | None
    time: float
    private: bool = False


def append_event(db: sqlite3.Connection, job: Append, retention: Retention) -> StoredEvent:
    """Store one event (or find its idempotency key's first event); apply the count bound."""
    key, now = job.idempotency_key, job.time
    if key is not None:
        row = db.execute(
            "SELECT fingerprint, seq, time FROM idempotency WHERE key = ? AND time >= ?",
            (key, now - IDEMPOTENCY_WINDOW),
        ).fetchone()
        if row is not None:
            return replay(
                key,
                str(row[0]),
                int(row[1]),
                float(row[2]),
                job.topic,
                job.data,
                job.event,
                job.private,
            )
    seq = int(
        db.execute(
            "INSERT INTO events (topic, event, data, time, private) VALUES (?, ?, ?, ?, ?) "
            "RETURNING seq",
            (job.topic, job.event, job.data, now, int(job.private)),
        ).fetchone()[0]
    )
    count = int(
        db.execute(
            f"INSERT INTO topics (topic, count, trimmed_through) VALUES (?, 1, {FORGOTTEN}) "
            "ON CONFLICT (topic) DO UPDATE SET count = count + 1 RETURNING count",
            (job.topic,),
        ).fetchone()[0]
    )
    limit = retention.max_events
    if limit is not None and count > limit:
        _trim_topic(db, job.topic, count - limit)
    if key is not None:
        db.execute(
            "INSERT OR REPLACE INTO idempotency (key, seq, fingerprint, time) VALUES (?, ?, ?, ?)",
            (key, seq, fingerprint(job.topic, job.data, job.event, job.private), now),
        )
    return StoredEvent(seq, job.topic, job.data, job.event, now, job.private)


def _trim_topic(db: sqlite3.Connection, topic: str, excess: int) -> None:
    removed = [
        int(r[0])
        for r in db.execute(
            "DELETE FROM events WHERE seq IN "
            "(SELECT seq FROM events WHERE topic = ? ORDER BY seq LIMIT ?) RETURNING seq",
            (topic, excess),
        ).fetchall()
    ]
    if removed:
        db.execute(
            "UPDATE topics SET count = count - ?, "
            "trimmed_through = max(trimmed_through, ?) WHERE topic = ?",
            (len(removed), max(removed), topic),
        )
        _forget_emptied(db, "topic = ? AND count <= 0", (topic,))


def _forget_emptied(db: sqlite3.Connection, where: str, params: tuple[str, ...] = ()) -> None:
    """Delete the ``topics`` rows ``where`` picks; raise ``forgotten_through`` to their mark."""
    marks = [
        int(r[0])
        for r in db.execute(
            f"DELETE FROM topics WHERE {where} RETURNING trimmed_through", params
        ).fetchall()
    ]
    if marks:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('forgotten_through', ?) "
            "ON CONFLICT (key) DO UPDATE SET "
            "value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            (str(max(marks)),),
        )


def prune_store(db: sqlite3.Connection, retention: Retention, now: float) -> int:
    """Apply the age bound, forget emptied topics and expired keys; return events removed."""
    db.execute("DELETE FROM idempotency WHERE time < ?", (now - IDEMPOTENCY_WINDOW,))
    if retention.max_age is None:
        return 0
    rows = db.execute(
        "DELETE FROM events WHERE time < ? RETURNING topic, seq", (now - retention.max_age,)
    ).fetchall()
    per_topic: dict[str, tuple[int, int]] = {}
    for topic, seq in rows:
        count, high = per_topic.get(topic, (0, 0))
        per_topic[topic] = (count + 1, max(high, int(seq)))
    db.executemany(
        "UPDATE topics SET count = count - ?, "
        "trimmed_through = max(trimmed_through, ?) WHERE topic = ?",
        [(c, h, t) for t, (c, h) in per_topic.items()],
    )
    if per_topic:
        _forget_emptied(db, "count <= 0")
    return len(rows)
