"""Several SQLite backends on one file: each hears every event exactly once, in order.

Issue 12: two processes on one SQLite file each heard only their own publishes.
The contract here is the live-feed convention of ``hub/backends/_base.py``;
two backend objects in one process stand for two processes (they share
nothing but the file and the wake-up directory).  Real processes:
``tests/e2e/test_workers.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ssehub.errors import BackendUnavailableError
from ssehub.hub import Retention
from ssehub.hub.backends._sqlite_writer import GroupWriter
from ssehub.hub.backends.sqlite import SQLiteBackend
from tests.support.hubs import NO_BOUNDS
from tests.support.polling import apoll_until
from tests.support.recorder import Recorder

Opener = Callable[..., Awaitable[tuple[SQLiteBackend, Recorder]]]


@pytest.fixture
async def open_on_file(tmp_path: Path) -> AsyncIterator[Opener]:
    started: list[SQLiteBackend] = []

    async def open_one(**options: Any) -> tuple[SQLiteBackend, Recorder]:
        options.setdefault("retention", NO_BOUNDS)
        backend = SQLiteBackend(tmp_path / "hub.db", **options)
        recorder = Recorder()
        await backend.start(recorder)
        started.append(backend)
        return backend, recorder

    yield open_one
    for backend in started:
        await backend.aclose()


def seqs(recorder: Recorder) -> list[int]:
    return [event.seq for event in recorder.events]


async def test_two_backends_on_one_file_each_hear_every_event_once_in_order(
    open_on_file: Opener,
) -> None:
    a, heard_a = await open_on_file()
    b, heard_b = await open_on_file()
    stored = []
    for i in range(20):  # one at a time, alternating
        stored.append(await (a if i % 2 else b).append(f"t{i % 3}", f"serial {i}"))
    stored += await asyncio.gather(  # both at once
        *(backend.append("t", f"burst {i}") for i in range(40) for backend in (a, b))
    )
    expected = sorted(event.seq for event in stored)
    assert expected == list(range(1, 101))
    await heard_a.wait_for(100)
    await heard_b.wait_for(100)
    assert seqs(heard_a) == expected
    assert seqs(heard_b) == expected
    assert heard_a.events == heard_b.events == sorted(stored, key=lambda e: e.seq)
    assert heard_a.gaps == heard_b.gaps == 0


async def test_own_publishes_are_delivered_before_append_returns_without_a_read(
    open_on_file: Opener,
) -> None:
    a, heard_a = await open_on_file()
    assert a.feed is not None
    reads = a.feed.reads
    for i in range(10):
        stored = await a.append("t", str(i))
        assert heard_a.events[-1] == stored
    assert seqs(heard_a) == list(range(1, 11))
    assert a.feed.reads == reads


async def test_a_wake_up_reaches_the_other_process_without_waiting_for_its_timer(
    open_on_file: Opener,
) -> None:
    a, _ = await open_on_file()
    _, heard_b = await open_on_file(poll_interval=3600.0)
    stored = await a.append("t", "x")
    await heard_b.wait_for(1, timeout=10)
    assert heard_b.events == [stored]


async def test_a_lost_wake_up_costs_latency_never_events(open_on_file: Opener) -> None:
    a, _ = await open_on_file(wake=False)  # never wakes anybody
    b, heard_b = await open_on_file(poll_interval=0.05)
    stored = [await a.append("t", str(i)) for i in range(5)]
    await heard_b.wait_for(5, timeout=10)
    assert heard_b.events == stored
    assert b.feed is not None
    assert b.feed.read_rows == 5


async def test_rows_retention_removed_before_a_process_read_them_are_a_gap(
    open_on_file: Opener,
) -> None:
    a, _ = await open_on_file(retention=Retention(max_events=1, max_age=None))
    b, heard_b = await open_on_file(wake=False, poll_interval=3600.0)
    await a.append("other", "kept")
    await a.append("t", "removed by the next one")
    last = await a.append("t", "kept too")
    assert b.feed is not None
    assert b.feed.catch_up()
    assert heard_b.gaps == 1
    assert [e.data for e in heard_b.events] == ["kept", "kept too"]
    assert heard_b.events[-1] == last


async def test_the_registration_of_a_dead_process_is_removed(
    open_on_file: Opener, tmp_path: Path
) -> None:
    a, _ = await open_on_file()
    dead = tmp_path / "hub.db.wake" / "999999-0123456789ab"
    dead.touch()
    await a.append("t", "x")
    assert not dead.exists()


async def test_concurrent_appends_share_commits_and_arrive_in_seq_order(
    open_on_file: Opener,
) -> None:
    """Group commit: appends queued together share one transaction."""
    a, heard_a = await open_on_file()
    writer = a._writer
    assert writer is not None
    commits = writer.commits
    stored = await asyncio.gather(*(a.append(f"t{i % 4}", str(i)) for i in range(100)))
    assert [e.seq for e in stored] == list(range(1, 101))
    assert heard_a.events == list(stored)
    assert writer.commits - commits < 10


async def test_appends_wait_for_the_lock_another_process_holds_and_then_share_a_commit(
    open_on_file: Opener, tmp_path: Path
) -> None:
    a, heard_a = await open_on_file()
    writer = a._writer
    assert writer is not None
    other = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds the file's lock
        pending = asyncio.ensure_future(asyncio.gather(*(a.append("t", str(i)) for i in range(5))))
        await apoll_until(lambda: writer.busy_retries >= 3, "the batch to retry for the lock")
        assert not pending.done()
        assert heard_a.events == []
        commits = writer.commits
        other.execute("COMMIT")
        stored = await asyncio.wait_for(pending, timeout=10)
    finally:
        other.close()
    assert heard_a.events == list(stored)
    assert writer.commits == commits + 1  # the five waited together
    assert writer.thread_commits == 0


async def test_appends_fail_once_another_process_holds_the_lock_past_the_busy_timeout(
    tmp_path: Path,
) -> None:
    db = tmp_path / "locked.db"
    setup = sqlite3.connect(db, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x)")
    setup.close()
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 0")
    writer = GroupWriter(conn, on_commit=lambda _results: None, busy_timeout=0.05)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(BackendUnavailableError, match="locked by another writer"):
            await asyncio.wait_for(
                writer.write(lambda c: c.execute("INSERT INTO t VALUES (1)")), 10
            )
        other.execute("COMMIT")
        await asyncio.wait_for(writer.write(lambda c: c.execute("INSERT INTO t VALUES (2)")), 10)
        assert [row[0] for row in conn.execute("SELECT x FROM t")] == [2]
    finally:
        other.close()
        await writer.aclose()
        conn.close()
