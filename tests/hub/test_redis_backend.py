"""What only the Redis backend promises, beyond the shared contract suite.

Several nodes (``RedisBackend`` instances) share one private ``redis-server``:
one ``seq`` space, one history, every event fed live to every node exactly
once in ``seq`` order; a Redis that can't be reached is reported, fast, as
:class:`~ssehub.errors.BackendUnavailableError`.  The live feed's behaviour
across outages, trims and wipes is in ``test_redis_live_feed.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ssehub.errors import BackendUnavailableError, StoreTimeoutError
from ssehub.hub._types import Retention
from ssehub.hub.backends import open_backend
from ssehub.hub.backends.redis import RedisBackend
from tests.support.clock import FakeClock
from tests.support.polling import apoll_until
from tests.support.processes import RedisProcess, free_port
from tests.support.recorder import Recorder

pytestmark = pytest.mark.redis

NO_BOUNDS = Retention(max_events=None, max_age=None)


Opener = Callable[..., Awaitable[tuple[RedisBackend, Recorder]]]


@pytest.fixture
async def admin(redis_server: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def open_node(redis_server: RedisProcess) -> AsyncIterator[Opener]:
    """Start a node (a RedisBackend with its own live feed) on the shared Redis."""
    nodes: list[RedisBackend] = []

    async def opener(**options: Any) -> tuple[RedisBackend, Recorder]:
        options.setdefault("retention", NO_BOUNDS)
        options.setdefault("prefix", "hub")
        node = RedisBackend(redis_server.url, **options)
        recorder = Recorder()
        nodes.append(node)
        await node.start(recorder)
        return node, recorder

    yield opener
    for node in nodes:
        await node.aclose()


async def test_two_nodes_see_each_others_events_once_in_seq_order(open_node: Opener) -> None:
    a, seen_by_a = await open_node()
    b, seen_by_b = await open_node()
    assert a.epoch == b.epoch
    published = await asyncio.gather(
        *((a if i % 2 else b).append(f"topic/{i % 3}", f"event {i}") for i in range(60))
    )
    expected = sorted(published, key=lambda e: e.seq)
    assert [e.seq for e in expected] == list(range(1, 61))
    # One more event, published last: once it arrived, everything before it has too.
    sentinel = await a.append("topic/end", "sentinel")
    await seen_by_a.wait_until(lambda r: sentinel in seen_by_a.events)
    await seen_by_b.wait_until(lambda r: sentinel in seen_by_b.events)
    assert seen_by_a.events == [*expected, sentinel]
    assert seen_by_b.events == [*expected, sentinel]
    assert seen_by_a.gaps == seen_by_b.gaps == 0


async def test_a_cursor_from_one_node_reads_the_same_history_on_another(open_node: Opener) -> None:
    a, _ = await open_node()
    b, _ = await open_node()
    stored = [await a.append(topic, f"{topic}{i}") for i in range(4) for topic in ("x", "y", "z")]
    cursor = stored[4].seq
    on_a = await a.read(["x", "z"], after=cursor, limit=100)
    on_b = await b.read(["z", "x"], after=cursor, limit=100)
    assert on_b == on_a
    assert [e.data for e in on_b.events] == ["z1", "x2", "z2", "x3", "z3"]
    assert await b.head() == stored[-1].seq


async def test_prefixes_keep_stores_apart(open_node: Opener) -> None:
    one, seen_by_one = await open_node(prefix="one")
    two, seen_by_two = await open_node(prefix="two")
    first = await one.append("t", "for one")
    second = await two.append("t", "for two")
    assert first.seq == second.seq == 1
    assert one.epoch != two.epoch
    await seen_by_one.wait_until(lambda r: len(seen_by_one.events) == 1)
    await seen_by_two.wait_until(lambda r: len(seen_by_two.events) == 1)
    assert seen_by_one.events == [first]
    assert seen_by_two.events == [second]


async def test_open_backend_builds_a_redis_backend_with_the_retention(
    redis_server: RedisProcess,
) -> None:
    retention = Retention(max_events=5, max_age=60.0)
    backend = open_backend(redis_server.url, retention)
    assert isinstance(backend, RedisBackend)
    assert backend.retention == retention
    await backend.aclose()


def test_a_malformed_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid Redis URL"):
        RedisBackend("redis://127.0.0.1:notaport/0")


async def test_start_without_a_redis_raises_backend_unavailable() -> None:
    backend = RedisBackend(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1.0)
    try:
        async with asyncio.timeout(10):
            with pytest.raises(BackendUnavailableError) as info:
                await backend.start(Recorder())
        assert isinstance(info.value.__cause__, RedisError)
    finally:
        await backend.aclose()


async def test_while_redis_is_down_every_operation_fails_fast_and_nothing_is_stored(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    node = RedisBackend(redis_server.url, retention=NO_BOUNDS, connect_timeout=1.0)
    try:
        await node.start(Recorder())
        first = await node.append("t", "before")
        redis_server.stop()
        async with asyncio.timeout(10):  # a bound, not a speed test: no retry storm
            with pytest.raises(BackendUnavailableError, match="append failed") as info:
                await node.append("t", "while down")
            assert isinstance(info.value.__cause__, RedisError)
            with pytest.raises(BackendUnavailableError):
                await node.read(["t"], after=0, limit=10)
            with pytest.raises(BackendUnavailableError):
                await node.head()
            with pytest.raises(BackendUnavailableError):
                await node.prune(now=0.0)
        await apoll_until(lambda: not node.feed_connected, "the feed to notice", 15)
    finally:
        await node.aclose()
    assert first.seq == 1


async def test_a_hung_redis_times_out_an_append_as_outcome_unknown_and_a_keyed_retry_stores_once(
    redis_server: RedisProcess, admin: aioredis.Redis
) -> None:
    """Issue 9, finding 9: a timed-out append may be stored; the same key makes the retry safe."""
    node = RedisBackend(redis_server.url, retention=NO_BOUNDS, prefix="hub", command_timeout=0.5)
    try:
        await node.start(Recorder())
        await node.append("t", "before")
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        try:
            async with asyncio.timeout(10):
                with pytest.raises(
                    StoreTimeoutError, match=r"append timed out \(outcome unknown\)"
                ):
                    await node.append("t", "to a frozen redis", idempotency_key="pub-1")
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        # The frozen Redis still had the command in its socket: it runs it on waking.
        await apoll_until(lambda: _equals(admin.xlen("hub:t:t"), 2), "the queued append to run")
        retry = await node.append("t", "to a frozen redis", idempotency_key="pub-1")
        assert retry.replayed
        entries: Any = await admin.xrange("hub:t:t")
        assert [fields["data"] for _, fields in entries] == ["before", "to a frozen redis"]
        assert retry.seq == int(entries[-1][0].split("-")[0])
        assert await node.head() == retry.seq
    finally:
        await node.aclose()


async def test_a_refused_connection_is_not_reported_as_a_timeout(
    redis_server: RedisProcess,
) -> None:
    node = RedisBackend(redis_server.url, retention=NO_BOUNDS, connect_timeout=1.0)
    try:
        await node.start(Recorder())
        redis_server.stop()
        with pytest.raises(BackendUnavailableError) as info:
            await node.append("t", "x", idempotency_key="k")
        assert not isinstance(info.value, StoreTimeoutError)
    finally:
        await node.aclose()


async def test_an_idempotency_key_lives_24_hours_and_emptied_topics_leave_no_keys(
    open_node: Opener, admin: aioredis.Redis
) -> None:
    """Issue 9, finding 7: no stream, set member or trim mark outlives a topic's events."""
    clock = FakeClock(1_000.0)
    node, _ = await open_node(retention=Retention(max_events=2, max_age=10.0), clock=clock)
    for i in range(200):
        await node.append(f"topic/{i % 50}", "x")
    await node.append("keyed", "x", idempotency_key="k")
    assert 24 * 3600_000 - 60_000 < await admin.pttl("hub:key:k") <= 24 * 3600_000
    assert await admin.hlen("hub:trimmed") == 50
    assert await admin.scard("hub:topics") == 51
    assert await node.prune(now=1_011.0) == 101
    assert await admin.hlen("hub:trimmed") == 0
    assert await admin.scard("hub:topics") == 0
    assert [k async for k in admin.scan_iter("hub:t:*")] == []
    assert await admin.get("hub:forgotten") == "201"
    assert (await node.read(["topic/3"], after=200, limit=10)).gap
    assert not (await node.read(["topic/3"], after=201, limit=10)).gap


async def test_at_most_max_idempotency_keys_are_held_the_oldest_forgotten_first(
    open_node: Opener, admin: aioredis.Redis
) -> None:
    clock = FakeClock(1_000.0)
    node, _ = await open_node(max_idempotency_keys=3, clock=clock)
    first = await node.append("t", "0", idempotency_key="k0")
    for i in range(1, 6):
        clock.advance(1.0)
        await node.append("t", str(i), idempotency_key=f"k{i}")
    held = sorted([key async for key in admin.scan_iter("hub:key:*")])
    assert held == ["hub:key:k3", "hub:key:k4", "hub:key:k5"]
    assert await admin.zcard("hub:keys") == 3
    again = await node.append("t", "0", idempotency_key="k0")  # forgotten: a new event
    assert again.seq > first.seq
    assert not again.replayed
    replayed = await node.append("t", "5", idempotency_key="k5")  # still held
    assert replayed.replayed


async def test_one_time_tokens_are_not_listed_among_idempotency_keys(
    open_node: Opener, admin: aioredis.Redis
) -> None:
    node, _ = await open_node(max_idempotency_keys=3)
    for i in range(10):
        await node.append("t", str(i))
    assert await admin.zcard("hub:keys") == 0


async def test_the_live_log_holds_a_bounded_number_of_bytes_whatever_the_event_size(
    open_node: Opener, admin: aioredis.Redis
) -> None:
    node, _ = await open_node(log_max_bytes=1_000, log_max_len=1_000)
    for i in range(100):
        await node.append(f"t/{i % 3}", "x" * 100)
    held = await admin.xlen("hub:log")
    assert 10 <= held <= 11  # trimmed back to 1,000 bytes once past them by 1/64
    assert int(await admin.get("hub:logbytes")) == 100 * held
    first = (await admin.xrange("hub:log", count=1))[0][0]
    assert first == f"{101 - held}-0"  # the newest entries are the ones kept


async def test_a_key_of_the_wrong_type_fails_the_append_before_anything_changes(
    open_node: Opener, admin: aioredis.Redis
) -> None:
    node, seen = await open_node()
    await node.append("fine", "1")
    await admin.set("hub:t:clash", "not a stream")
    with pytest.raises(BackendUnavailableError, match="WRONGTYPE"):
        await node.append("clash", "x")
    assert await node.head() == 1
    after = await node.append("fine", "2")
    assert after.seq == 2  # no seq was burnt: the log has no hole, the feed no gap
    await seen.wait_until(lambda r: after in seen.events)
    assert [e.seq for e in seen.events] == [1, 2]
    assert seen.gaps == 0


async def test_count_retention_keeps_exactly_max_events_per_topic(
    open_node: Opener, admin: aioredis.Redis
) -> None:
    node, _ = await open_node(retention=Retention(max_events=2, max_age=None))
    for i in range(5):
        await node.append("a", f"a{i}")
        await node.append("b", f"b{i}")
    assert await admin.xlen("hub:t:a") == 2
    assert await admin.xlen("hub:t:b") == 2
    assert await admin.hgetall("hub:trimmed") == {"a": "5", "b": "6"}
    result = await node.read(["a", "b"], after=6, limit=10)
    assert [e.data for e in result.events] == ["a3", "b3", "a4", "b4"]
    assert not result.gap


async def test_prune_forgets_an_emptied_topic_but_old_cursors_still_get_a_gap(
    open_node: Opener, admin: aioredis.Redis
) -> None:
    clock = FakeClock(1_000.0)
    node, _ = await open_node(retention=Retention(max_events=None, max_age=10.0), clock=clock)
    old = await node.append("short/lived", "x")
    clock.now = 1_005.0
    await node.append("other", "y")
    assert await node.prune(now=1_012.0) == 1
    assert await admin.exists("hub:t:short/lived") == 0
    assert await admin.smembers("hub:topics") == {"other"}
    assert await admin.hgetall("hub:trimmed") == {}
    stale = await node.read(["short/lived"], after=0, limit=10)
    assert stale.events == []
    assert stale.gap
    assert not (await node.read(["short/lived"], after=old.seq, limit=10)).gap
    assert await node.prune(now=1_012.0) == 0


async def test_age_retention_only_removes_a_leading_run_of_old_events(open_node: Opener) -> None:
    clock = FakeClock(1_000.0)
    node, _ = await open_node(retention=Retention(max_events=None, max_age=100.0), clock=clock)
    for now in (1_000.0, 1_010.0, 1_200.0, 1_020.0):  # a node with a late clock published 1_020
        clock.now = now
        await node.append("t", str(now))
    assert await node.prune(now=1_150.0) == 2
    result = await node.read(["t"], after=0, limit=10)
    assert [e.data for e in result.events] == ["1200.0", "1020.0"]


async def test_aclose_is_idempotent_and_stops_the_live_feed(open_node: Opener) -> None:
    node, _ = await open_node()
    assert node.feed_connected
    await node.aclose()
    await node.aclose()
    assert not node.feed_connected


async def _equals(value: Awaitable[int], want: int) -> bool:
    return await value == want
