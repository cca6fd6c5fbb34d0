"""The SQLite store's writes, as plain functions of an open ``sqlite3`` connection.

Each function runs *inside* a transaction its caller began (``BEGIN
IMMEDIATE``, see :mod:`._sqlite_writer`) and commits nothing itself, so many
of them can share one commit.  They touch only the schema of
:mod:`.sqlite` (drawn in its docstring).

An append that refuses (an idempotency conflict, a full quota) raises before
it writes a row, so a refusal never spoils the other appends of its
transaction.  ``meta.stored_bytes`` is kept equal to the bytes of the events
held (:data:`SIZE`), by every write that adds or removes events, and
``meta.idempotency_keys`` equal to the rows of ``idempotency``, which an
append keeps at most ``max_keys`` (the oldest forgotten first, as the memory
store does), so a publisher sending a fresh key with every event can't grow
the file for the 24 h window.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .._types import Retention, StoredEvent
from ._base import event_size
from ._idempotency import IDEMPOTENCY_WINDOW, fingerprint, replay
from ._quota import bytes_refusal, topics_refusal

__all__ = ["SIZE", "STORED_BYTES", "Append", "append_event", "prune_store"]

FORGOTTEN = "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'forgotten_through'), 0)"

#: An event row's size in SQL, as :func:`._base.event_size` counts it (UTF-8 bytes).
SIZE = "(length(CAST(data AS BLOB)) + coalesce(length(CAST(event AS BLOB)), 0))"

#: The stored bytes counter (created, from the rows, when the file is opened).
STORED_BYTES = "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'stored_bytes'), 0)"


@dataclass(frozen=True, slots=True)
class Append:
    """One event to store (its key already validated), stamped ``time`` by the caller."""

    topic: str
    data: str
    event: str | None
    idempotency_key: str | None
    time: float
    private: bool = False


def append_event(
    db: sqlite3.Connection, job: Append, retention: Retention, max_keys: int = 100_000
) -> StoredEvent:
    """Store one event (or find its idempotency key's first event); apply the count bounds."""
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
    size = event_size(job.data, job.event)
    _check_quotas(db, job.topic, size, retention)
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
    freed = 0
    if limit is not None and count > limit:
        freed = _trim_topic(db, job.topic, count, count - limit)
    _add_bytes(db, size - freed)
    if key is not None:
        expired = db.execute("DELETE FROM idempotency WHERE key = ?", (key,)).rowcount
        db.execute(
            "INSERT INTO idempotency (key, seq, fingerprint, time) VALUES (?, ?, ?, ?)",
            (key, seq, fingerprint(job.topic, job.data, job.event, job.private), now),
        )
        held = _add_keys(db, 1 - expired)
        if held > max_keys:
            dropped = db.execute(
                "DELETE FROM idempotency WHERE key IN "
                "(SELECT key FROM idempotency ORDER BY time LIMIT ?)",
                (held - max_keys,),
            ).rowcount
            _add_keys(db, -dropped)
    return StoredEvent(seq, job.topic, job.data, job.event, now, job.private)


def _check_quotas(db: sqlite3.Connection, topic: str, size: int, retention: Retention) -> None:
    """Raise QuotaExceededError if storing ``size`` more bytes in ``topic`` breaks a quota."""
    if retention.max_topics is None and retention.max_bytes is None:
        return
    held, stored = db.execute(
        f"SELECT (SELECT count FROM topics WHERE topic = ?), {STORED_BYTES}", (topic,)
    ).fetchone()
    if held is None and retention.max_topics is not None:
        topics = int(db.execute("SELECT count(*) FROM topics").fetchone()[0])
        refusal = topics_refusal(retention, new_topic=True, topics=topics)
        if refusal is not None:
            raise refusal
    if retention.max_bytes is None:
        return
    stored_after = int(stored) + size
    limit = retention.max_events
    if stored_after > retention.max_bytes and held is not None and limit is not None:
        pushed_out = int(held) + 1 - limit
        if pushed_out > 0:
            stored_after -= int(
                db.execute(
                    f"SELECT coalesce(sum({SIZE}), 0) FROM "
                    "(SELECT data, event FROM events WHERE topic = ? ORDER BY seq LIMIT ?)",
                    (topic, pushed_out),
                ).fetchone()[0]
            )
    refusal = bytes_refusal(retention, stored_after=stored_after)
    if refusal is not None:
        raise refusal


def _add_bytes(db: sqlite3.Connection, delta: int) -> None:
    if delta:
        db.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'stored_bytes'",
            (delta,),
        )


def _add_keys(db: sqlite3.Connection, delta: int) -> int:
    """Move the idempotency record count by ``delta``; return the new count."""
    row = db.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'idempotency_keys' "
        "RETURNING CAST(value AS INTEGER)",
        (delta,),
    ).fetchone()
    return int(row[0]) if row is not None else 0


def _trim_topic(db: sqlite3.Connection, topic: str, count: int, excess: int) -> int:
    """Delete the ``excess`` oldest of ``topic``'s ``count`` events; return their bytes.

    The caller moves ``meta.stored_bytes`` (once, by its append's net change).
    """
    rows = db.execute(
        "DELETE FROM events WHERE seq IN "
        f"(SELECT seq FROM events WHERE topic = ? ORDER BY seq LIMIT ?) RETURNING seq, {SIZE}",
        (topic, excess),
    ).fetchall()
    if not rows:
        return 0
    db.execute(
        "UPDATE topics SET count = count - ?, "
        "trimmed_through = max(trimmed_through, ?) WHERE topic = ?",
        (len(rows), max(int(r[0]) for r in rows), topic),
    )
    if count - len(rows) <= 0:
        _forget_emptied(db, "topic = ? AND count <= 0", (topic,))
    return sum(int(r[1]) for r in rows)


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
    expired = db.execute(
        "DELETE FROM idempotency WHERE time < ?", (now - IDEMPOTENCY_WINDOW,)
    ).rowcount
    _add_keys(db, -expired)
    if retention.max_age is None:
        return 0
    rows = db.execute(
        f"DELETE FROM events WHERE time < ? RETURNING topic, seq, {SIZE}",
        (now - retention.max_age,),
    ).fetchall()
    _add_bytes(db, -sum(int(r[2]) for r in rows))
    per_topic: dict[str, tuple[int, int]] = {}
    for topic, seq, _size in rows:
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
