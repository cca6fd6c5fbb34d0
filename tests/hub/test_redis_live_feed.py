"""The Redis live feed across outages, trims, wipes and rollbacks.

Each test runs a private ``redis-server`` and two or more nodes.  A node can
be *cut off* on its own through :class:`TcpProxy` (a TCP forwarder the test
opens and closes) while the other nodes keep publishing; Redis itself can be
stopped and relaunched on the same port, with its data (``SAVE`` first) or from
an older snapshot.  Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from ssehub.errors import BackendUnavailableError
from ssehub.hub._types import Retention, StoredEvent
from ssehub.hub.backends.redis import RedisBackend
from tests.support.recorder import Recorder
from tests.support.redis_server import RedisProcess, launch_redis, redis_or_skip

pytestmark = pytest.mark.redis

NO_BOUNDS = Retention(max_events=None, max_age=None)
# Quick reconnects and epoch checks keep these tests short; nothing depends on them.
FAST = {"feed_block": 0.2, "reconnect_delay": 0.01, "reconnect_max_delay": 0.1}


@dataclass
class TcpProxy:
    """A loopback TCP forwarder to ``target_port`` that a test can cut and restore.

    While cut, every open connection is aborted and new ones are closed at
    once: for the node behind it, Redis is unreachable; for the others, not.
    """

    target_port: int
    port: int = 0
    cut_off: bool = False
    #: When set, the next chunk Redis sends is swallowed and its link aborted.
    drop_next_reply: bool = False
    _server: asyncio.Server | None = None
    _links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self) -> None:
        self.cut_off = True
        for down, up in list(self._links):
            down.transport.abort()
            up.transport.abort()
        self._links.clear()

    def restore(self) -> None:
        self.cut_off = False

    async def aclose(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                _pump(reader, up_writer), _pump(up_reader, writer, self._lose_reply)
            )
        finally:
            self._links.discard(link)
            writer.transport.abort()
            up_writer.transport.abort()

    def _lose_reply(self) -> bool:
        lose, self.drop_next_reply = self.drop_next_reply, False
        return lose


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    lose: Callable[[], bool] = lambda: False,
) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            if lose():
                break
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@dataclass
class Redis:
    """The test's redis-server: stop it, relaunch it on the same port and directory."""

    server: RedisProcess

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    async def save(self) -> None:
        async with aioredis.Redis.from_url(self.url) as client:
            await client.save()

    def stop(self) -> None:
        self.server.stop()

    def relaunch(self) -> None:
        """Start redis-server again; it loads the last ``SAVE`` of its directory."""
        self.server = launch_redis(self.server.port, self.server.dir)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    with redis_or_skip(tmp_path / "redis") as server:
        handle = Redis(server)
        try:
            yield handle
        finally:
            handle.server.stop()


Opener = Callable[..., Awaitable[tuple[RedisBackend, Recorder]]]


@pytest.fixture
async def open_node(redis: Redis) -> AsyncIterator[Opener]:
    """Start a node on the test's Redis (or, with ``url=``, through a proxy)."""
    nodes: list[RedisBackend] = []

    async def opener(url: str | None = None, **options: Any) -> tuple[RedisBackend, Recorder]:
        options = {
            "retention": NO_BOUNDS,
            "prefix": "hub",
            "connect_timeout": 1.0,
            **FAST,
            **options,
        }
        node = RedisBackend(url or redis.url, **options)
        recorder = Recorder()
        nodes.append(node)
        await node.start(recorder)
        return node, recorder

    yield opener
    for node in nodes:
        await node.aclose()


@pytest.fixture
async def proxy(redis: Redis) -> AsyncIterator[TcpProxy]:
    forwarder = TcpProxy(redis.port)
    await forwarder.start()
    yield forwarder
    await forwarder.aclose()


async def publish_when_back(node: RedisBackend, topic: str, data: str) -> StoredEvent:
    """Append as soon as Redis answers again (bounded)."""
    async with asyncio.timeout(15):
        while True:
            try:
                return await node.append(topic, data)
            except BackendUnavailableError:
                await asyncio.sleep(0.02)


async def test_feed_survives_a_redis_restart_and_delivers_what_was_published_meanwhile(
    redis: Redis, open_node: Opener
) -> None:
    a, seen_by_a = await open_node()
    b, seen_by_b = await open_node()
    first = await a.append("t", "before the restart")
    await seen_by_a.wait_until(lambda r: first in r.events)
    await redis.save()
    redis.stop()
    with pytest.raises(BackendUnavailableError):
        await a.append("t", "while redis is down")
    redis.relaunch()
    later = [await publish_when_back(b, "t", "after 0")]
    later += [await b.append(f"t{i}", f"after {i}") for i in range(1, 5)]
    for recorder in (seen_by_a, seen_by_b):
        await recorder.wait_until(lambda r: later[-1] in r.events)
        assert recorder.events == [first, *later]
        assert recorder.gaps == 0
    assert [e.seq for e in later] == [2, 3, 4, 5, 6]
    assert a.feed_connected


async def test_feed_rides_out_killed_connections(redis: Redis, open_node: Opener) -> None:
    a, seen_by_a = await open_node()
    b, _ = await open_node()
    first = await a.append("t", "1")
    async with aioredis.Redis.from_url(redis.url) as admin:
        killed = await admin.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 2
    later = [await publish_when_back(b, "t", str(i)) for i in range(2, 6)]
    await seen_by_a.wait_until(lambda r: later[-1] in r.events)
    assert seen_by_a.events == [first, *later]
    assert seen_by_a.gaps == 0


async def test_a_node_cut_off_catches_up_in_order_once_back(
    proxy: TcpProxy, open_node: Opener
) -> None:
    a, seen_by_a = await open_node(proxy.url)
    b, _ = await open_node()
    first = await b.append("t", "before the cut")
    await seen_by_a.wait_until(lambda r: first in r.events)
    proxy.cut()
    with pytest.raises(BackendUnavailableError):
        await a.append("t", "from the cut-off node")
    missed = [await b.append(f"t/{i % 4}", f"missed {i}") for i in range(40)]
    assert not seen_by_a.events[1:]
    proxy.restore()
    await seen_by_a.wait_until(lambda r: missed[-1] in r.events)
    assert seen_by_a.events == [first, *missed]
    assert seen_by_a.gaps == 0


async def test_a_node_whose_position_was_trimmed_from_the_log_gets_one_gap(
    proxy: TcpProxy, open_node: Opener
) -> None:
    a, seen_by_a = await open_node(proxy.url)
    b, _ = await open_node(log_max_len=10)
    first = await b.append("t", "before the cut")
    await seen_by_a.wait_until(lambda r: first in r.events)
    epoch = a.epoch
    proxy.cut()
    for i in range(400):  # "MAXLEN ~" trims whole nodes of 100 entries
        await b.append("t", f"trimmed from the log {i}")
    proxy.restore()
    await seen_by_a.wait_until(lambda r: r.gaps == 1)
    after_gap = await b.append("t", "after the gap")
    await seen_by_a.wait_until(lambda r: after_gap in r.events)
    assert seen_by_a.events == [first, after_gap]
    assert seen_by_a.gaps == 1
    assert a.epoch == epoch  # history is intact: cursors stay valid
    assert (await a.read(["t"], after=first.seq, limit=1000)).events[-1] == after_gap


async def test_a_wiped_store_gets_a_new_epoch_and_every_node_a_gap(
    redis: Redis, open_node: Opener
) -> None:
    a, seen_by_a = await open_node()
    b, seen_by_b = await open_node()
    await a.append("t", "old store")
    old_epoch = a.epoch
    async with aioredis.Redis.from_url(redis.url) as admin:
        await admin.flushdb()
    fresh = await b.append("t", "new store")
    assert fresh.seq == 1
    assert b.epoch != old_epoch  # known at once from the append
    for recorder in (seen_by_a, seen_by_b):
        await recorder.wait_until(lambda r: r.gaps == 1)
    assert a.epoch == b.epoch != old_epoch
    again = await a.append("t", "live again")
    for recorder in (seen_by_a, seen_by_b):
        await recorder.wait_until(lambda r: again in r.events)
        assert recorder.events[-1] == again
        assert recorder.gaps == 1


async def test_redis_back_from_an_older_snapshot_replaces_the_epoch(
    redis: Redis, open_node: Opener
) -> None:
    a, seen_by_a = await open_node()
    b, seen_by_b = await open_node()
    for i in range(2):
        await a.append("t", f"saved {i}")
    await redis.save()
    lost = [await a.append("t", f"lost {i}") for i in range(3)]
    await seen_by_b.wait_until(lambda r: lost[-1] in r.events)
    old_epoch = a.epoch
    redis.stop()
    redis.relaunch()  # seq is back at 2: seqs 3..5 would be minted a second time
    for recorder in (seen_by_a, seen_by_b):
        await recorder.wait_until(lambda r: r.gaps == 1)
    assert a.epoch == b.epoch != old_epoch
    again = await publish_when_back(b, "t", "after the rollback")
    assert again.seq == 3
    for recorder in (seen_by_a, seen_by_b):
        await recorder.wait_until(lambda r: again in r.events)
        assert recorder.gaps == 1


async def test_a_rollback_hidden_by_newer_publishes_is_still_detected(
    redis: Redis, proxy: TcpProxy, open_node: Opener
) -> None:
    a, seen_by_a = await open_node(proxy.url)
    for i in range(2):
        await a.append("t", f"saved {i}")
    await redis.save()
    lost = [await a.append("t", f"lost {i}") for i in range(3)]
    await seen_by_a.wait_until(lambda r: lost[-1] in r.events)
    old_epoch = a.epoch
    proxy.cut()
    redis.stop()
    redis.relaunch()
    # A publisher that does not follow the feed mints seqs 3..6 again, past a's position.
    publisher = RedisBackend(redis.url, retention=NO_BOUNDS, prefix="hub")
    try:
        remade = [await publish_when_back(publisher, "t", f"remade {i}") for i in range(4)]
    finally:
        await publisher.aclose()
    assert [e.seq for e in remade] == [3, 4, 5, 6]
    assert publisher.epoch == old_epoch
    proxy.restore()
    await seen_by_a.wait_until(lambda r: r.gaps == 1)
    assert a.epoch != old_epoch
    assert seen_by_a.events[-1] == lost[-1]  # none of the re-minted events went out as live


async def test_the_first_publish_after_a_blip_succeeds_on_a_fresh_connection(
    proxy: TcpProxy, open_node: Opener
) -> None:
    a, _ = await open_node(proxy.url)
    _, seen_by_b = await open_node()
    first = await a.append("t", "before the blip")
    proxy.cut()  # a's pooled connections are reset while idle...
    proxy.restore()
    second = await a.append("t", "right after")  # ...and the first command on one fails
    assert second.seq == first.seq + 1
    await seen_by_b.wait_until(lambda r: second in r.events)
    assert seen_by_b.events == [first, second]
    assert seen_by_b.gaps == 0


async def test_an_append_whose_reply_was_lost_is_retried_without_storing_it_twice(
    proxy: TcpProxy, open_node: Opener
) -> None:
    _, seen = await open_node()
    publisher = RedisBackend(proxy.url, retention=NO_BOUNDS, prefix="hub")  # no feed of its own
    try:
        first = await publisher.append("t", "script loaded, connection open")
        proxy.drop_next_reply = True  # Redis runs the next append; its reply never arrives
        second = await publisher.append("t", "once")
        assert not proxy.drop_next_reply
        sentinel = await publisher.append("t", "sentinel")
    finally:
        await publisher.aclose()
    assert [first.seq, second.seq, sentinel.seq] == [1, 2, 3]
    await seen.wait_until(lambda r: sentinel in r.events)
    assert seen.events == [first, second, sentinel]
    assert seen.gaps == 0
