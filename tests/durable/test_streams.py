"""The Durable Streams rules on every store: memory, SQLite and Redis.

Each test drives :class:`ssehub.durable.DurableStreams` (the one place the
protocol's rules are decided) over a real store, with a :class:`FakeClock`
for TTLs.  SQLite and Redis also get two store objects on one file / one
server — two processes or nodes — to show that commits are atomic across
them and that a commit on one wakes readers on the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ssehub.durable import DurableStore, DurableStreams, MemoryDurableStore
from ssehub.durable._redis import RedisDurableStore
from ssehub.durable._service import Answer, AppendRequest, CreateRequest, Producer, Snapshot
from ssehub.durable._sqlite import SQLiteDurableStore
from tests.support.clock import FakeClock
from tests.support.redis_server import RedisProcess

STORES = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]


def _open(kind: str, tmp_path: Path, request: pytest.FixtureRequest, prefix: str) -> DurableStore:
    if kind == "memory":
        return MemoryDurableStore()
    if kind == "sqlite":
        return SQLiteDurableStore(str(tmp_path / "hub.db"))
    server: RedisProcess = request.getfixturevalue("shared_redis_server")
    return RedisDurableStore(server.url, prefix=prefix)


@pytest.fixture(params=STORES)
async def pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[DurableStore, DurableStore]]:
    """Two store objects on the same data (memory: the same object)."""
    prefix = f"test:{request.node.name}"
    first = _open(request.param, tmp_path, request, prefix)
    second = first if request.param == "memory" else _open(request.param, tmp_path, request, prefix)
    await first.start()
    if second is not first:
        await second.start()
    try:
        yield first, second
    finally:
        await first.aclose()
        if second is not first:
            await second.aclose()


def _create(
    body: bytes = b"", content_type: str | None = "text/plain", **extra: Any
) -> CreateRequest:
    fields: dict[str, Any] = {
        "content_type": content_type,
        "ttl": None,
        "expires_at": None,
        "expires_ts": None,
        "closed": False,
        "body": body,
        **extra,
    }
    return CreateRequest(**fields)


def _append(body: bytes, **extra: Any) -> AppendRequest:
    fields: dict[str, Any] = {
        "content_type": "text/plain",
        "body": body,
        "closed": False,
        "stream_seq": None,
        "producer": None,
        **extra,
    }
    return AppendRequest(**fields)


async def _text(streams: DurableStreams, name: str) -> bytes:
    found = await streams.lookup(name)
    assert isinstance(found, Snapshot)
    records = await streams.store.read(found.meta.id, found.meta.start, 1 << 20)
    return b"".join(data for _, data in records)


async def test_a_recreated_stream_never_shows_the_old_data(
    pair: tuple[DurableStore, DurableStore],
) -> None:
    streams = DurableStreams(pair[0])
    assert (await streams.create("s", _create(b"old data"))).status == 201
    assert (await streams.delete("s")).status == 204
    assert (await streams.create("s", _create(b"new"))).status == 201
    assert await _text(streams, "s") == b"new"


async def test_a_sliding_ttl_expires_an_idle_stream_and_reads_renew_it(
    pair: tuple[DurableStore, DurableStore], clock: FakeClock
) -> None:
    streams = DurableStreams(pair[0], clock=clock)
    await streams.create("s", _create(b"x", ttl=10))
    clock.advance(8)
    found = await streams.lookup("s")
    assert isinstance(found, Snapshot)
    await streams.touch(found)  # a read
    clock.advance(8)
    assert isinstance(await streams.lookup("s"), Snapshot)
    clock.advance(3)
    gone = await streams.lookup("s")
    assert isinstance(gone, Answer)
    assert gone.status == 404
    assert await streams.sweep(["s"]) == 1
    assert await pair[0].load("s") is None


async def test_an_expired_source_with_forks_answers_410_and_its_fork_lives_on(
    pair: tuple[DurableStore, DurableStore], clock: FakeClock
) -> None:
    streams = DurableStreams(pair[0], clock=clock)
    await streams.create("src", _create(b"abc", expires_ts=clock.now + 5, expires_at="t"))
    fork = await streams.create("fork", _create(content_type=None, forked_from="src", ttl=60))
    assert fork.status == 201
    clock.advance(6)
    gone = await streams.lookup("src")
    assert isinstance(gone, Answer)
    assert gone.status == 410
    await streams.append("fork", _append(b"d"))
    assert await _text(streams, "fork") == b"abcd"


async def test_concurrent_appends_from_two_store_clients_all_land_once_in_order(
    pair: tuple[DurableStore, DurableStore],
) -> None:
    first, second = DurableStreams(pair[0]), DurableStreams(pair[1])
    await first.create("s", _create())
    answers = await asyncio.gather(
        *((first if i % 2 else second).append("s", _append(f"<{i}>".encode())) for i in range(20))
    )
    assert {a.status for a in answers} == {204}
    offsets = sorted(a.headers["Stream-Next-Offset"] for a in answers)
    assert len(set(offsets)) == 20
    text = await _text(first, "s")
    assert sorted(text.decode().replace("><", ">|<").split("|")) == sorted(
        f"<{i}>" for i in range(20)
    )


async def test_an_idempotent_producer_is_deduplicated_and_fenced_across_clients(
    pair: tuple[DurableStore, DurableStore],
) -> None:
    first, second = DurableStreams(pair[0]), DurableStreams(pair[1])
    await first.create("s", _create())
    ok = await first.append("s", _append(b"a", producer=Producer("p", 0, 0)))
    retry = await second.append("s", _append(b"a", producer=Producer("p", 0, 0)))
    gap = await second.append("s", _append(b"c", producer=Producer("p", 0, 5)))
    bumped = await second.append("s", _append(b"b", producer=Producer("p", 1, 0)))
    zombie = await first.append("s", _append(b"z", producer=Producer("p", 0, 1)))
    assert (ok.status, retry.status, gap.status, bumped.status, zombie.status) == (
        200,
        204,
        409,
        200,
        403,
    )
    assert gap.headers["Producer-Expected-Seq"] == "1"
    assert zombie.headers["Producer-Epoch"] == "1"
    assert await _text(first, "s") == b"ab"


async def test_a_commit_on_one_client_wakes_readers_of_that_stream_on_the_other(
    pair: tuple[DurableStore, DurableStore],
) -> None:
    writer, reader = DurableStreams(pair[0]), pair[1]
    await writer.create("s", _create())
    woken = reader.notifier.watch("s")
    await writer.append("s", _append(b"x"))
    async with asyncio.timeout(5):
        await woken.wait()


async def test_the_byte_bound_drops_old_records_and_moves_the_start(
    pair: tuple[DurableStore, DurableStore],
) -> None:
    streams = DurableStreams(pair[0], max_bytes=10)
    await streams.create("s", _create())
    for chunk in (b"aaaa", b"bbbb", b"cccc", b"dddd"):
        await streams.append("s", _append(chunk))
    found = await streams.lookup("s")
    assert isinstance(found, Snapshot)
    assert found.meta.start == 6
    assert await _text(streams, "s") == b"bbbbccccdddd"
