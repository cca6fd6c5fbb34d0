"""What only the SQLite backend promises: durability across a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ssehub.errors import BackendUnavailableError
from ssehub.hub._types import Retention, StoredEvent
from ssehub.hub.backends._idempotency import IDEMPOTENCY_WINDOW
from ssehub.hub.backends.sqlite import SQLiteBackend, _read_sql


class Null:
    def on_event(self, event: StoredEvent) -> None:
        pass

    def on_gap(self) -> None:
        pass


async def test_history_epoch_and_head_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    first = SQLiteBackend(path)
    await first.start(Null())
    stored = [await first.append("t", f"e{i}") for i in range(3)]
    epoch = first.epoch
    await first.aclose()

    second = SQLiteBackend(path, retention=Retention())
    await second.start(Null())
    try:
        assert second.epoch == epoch
        assert await second.head() == stored[-1].seq
        assert (await second.read(["t"], after=stored[0].seq, limit=10)).events == stored[1:]
        assert (await second.append("t", "next")).seq == stored[-1].seq + 1
    finally:
        await second.aclose()


async def test_a_new_file_gets_a_new_epoch(tmp_path: Path) -> None:
    one, two = SQLiteBackend(tmp_path / "a.db"), SQLiteBackend(tmp_path / "b.db")
    await one.start(Null())
    await two.start(Null())
    try:
        assert one.epoch != two.epoch
    finally:
        await one.aclose()
        await two.aclose()


async def test_an_unopenable_path_is_a_clear_backend_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    backend = SQLiteBackend(tmp_path / "dir.db")
    with pytest.raises(BackendUnavailableError, match=r"cannot open SQLite store"):
        await backend.start(Null())


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def table_count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)


async def test_expired_topics_leave_no_rows_and_their_gap_survives_a_restart(
    tmp_path: Path,
) -> None:
    """Issue 9, finding 7: ``topics`` rows of topics with no events left are deleted."""
    path = tmp_path / "hub.db"
    clock = Clock(1_000.0)
    retention = Retention(max_events=None, max_age=10.0)
    first = SQLiteBackend(path, retention=retention, clock=clock)
    await first.start(Null())
    stored = [await first.append(f"topic/{i}", "x") for i in range(1_000)]
    assert table_count(path, "topics") == 1_000
    assert await first.prune(now=1_011.0) == 1_000
    assert table_count(path, "topics") == 0
    await first.aclose()

    second = SQLiteBackend(path, retention=retention, clock=clock)
    await second.start(Null())
    try:
        assert (await second.read(["topic/3"], after=stored[500].seq, limit=10)).gap
        assert not (await second.read(["topic/3"], after=stored[-1].seq, limit=10)).gap
        again = await second.append("topic/3", "again")
        assert (await second.read(["topic/3"], after=stored[0].seq, limit=10)).gap
        assert (await second.read(["topic/3"], after=stored[-1].seq, limit=10)).events == [again]
    finally:
        await second.aclose()


async def test_idempotency_records_survive_a_restart_and_are_pruned_after_the_window(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.db"
    clock = Clock(1_000.0)
    first = SQLiteBackend(path, clock=clock)
    await first.start(Null())
    stored = await first.append("t", "x", idempotency_key="k")
    await first.aclose()
    second = SQLiteBackend(path, clock=clock)
    await second.start(Null())
    try:
        again = await second.append("t", "x", idempotency_key="k")
        assert again.replayed
        assert again == stored
        await second.prune(now=1_000.0 + IDEMPOTENCY_WINDOW - 1)
        assert table_count(path, "idempotency") == 1
        await second.prune(now=1_000.0 + IDEMPOTENCY_WINDOW + 1)
        assert table_count(path, "idempotency") == 0
    finally:
        await second.aclose()


async def test_a_multi_topic_read_never_sorts_whole_rows(tmp_path: Path) -> None:
    """The merge of several topics sorts ``seq`` values only; rows come by primary key."""
    backend = SQLiteBackend(tmp_path / "hub.db")
    await backend.start(Null())
    await backend.aclose()
    with sqlite3.connect(tmp_path / "hub.db") as db:
        plan = db.execute("EXPLAIN QUERY PLAN " + _read_sql(2), ("a", "b", 0, 10)).fetchall()
    details = [row[-1] for row in plan]
    assert "SEARCH events USING INTEGER PRIMARY KEY (rowid=?)" in details
    assert any("COVERING INDEX events_topic_seq" in d for d in details)
    sorts = [i for i, row in enumerate(plan) if "TEMP B-TREE" in row[-1]]
    assert all(plan[i][1] != 0 for i in sorts), "only the subquery of seq values may sort"


async def test_a_file_from_before_private_events_is_migrated_and_its_events_stay_public(
    tmp_path: Path,
) -> None:
    """Issue 11: the ``private`` column is added to an older file; old events are public."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
            " event TEXT, data TEXT NOT NULL, time REAL NOT NULL);"
            "INSERT INTO meta VALUES ('epoch', 'oldepoch');"
            "INSERT INTO events (topic, event, data, time) VALUES ('t', NULL, 'old', 1.0);"
        )
    backend = SQLiteBackend(path)
    await backend.start(Null())
    try:
        added = await backend.append("t", "new", private=True)
        read = await backend.read(["t"], 0, 10)
    finally:
        await backend.aclose()
    assert backend.epoch == "oldepoch"
    assert [(e.seq, e.data, e.private) for e in read.events] == [
        (1, "old", False),
        (added.seq, "new", True),
    ]
