"""Plain events between two flushes reach each subscriber as one run.

The fan-out keeps the plain events (public, of topics no adapter filters) that
arrive between two flushes as runs and pushes each run to a subscriber in one
call at the flush; an event that must be filtered per subscriber first pushes
what is pending, so every stream still sees ``seq`` order.  These tests use a
real flush interval (``test_hub.py`` mostly runs with none).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from ssehub.hub import Hub, HubConfig, Selector, Stream, TopicGrant
from ssehub.hub._subscription import Subscription
from ssehub.hub.backends.memory import MemoryBackend
from ssehub.protocol import EventStreamParser


async def start_hub(flush_interval: float) -> Hub:
    config = HubConfig(flush_interval=flush_interval, max_queue_events=50)
    hub = Hub(MemoryBackend(), config, rng=random.Random(1))
    await hub.start(background=False)
    return hub


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    # Publishing a few events in process takes well under a millisecond: they
    # land between two flushes unless the machine stalls, which splits a run
    # in two at worst (the tests allow for that, never for one write per event).
    hub = await start_hub(0.2)
    try:
        yield hub
    finally:
        await hub.aclose()


@pytest.fixture
async def slow_hub() -> AsyncIterator[Hub]:
    hub = await start_hub(60.0)  # no second flush within a test
    try:
        yield hub
    finally:
        await hub.aclose()


class Writes:
    """A running stream's writes, as they come."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.runner = asyncio.ensure_future(stream.run(self.queue.put))

    async def next(self) -> bytes:
        return await asyncio.wait_for(self.queue.get(), 5)

    async def events(self, count: int) -> tuple[list[str], list[bytes]]:
        """The data of the next ``count`` events, and the writes that carried them."""
        data: list[str] = []
        writes: list[bytes] = []
        while len(data) < count:
            writes.append(await self.next())
            data += data_of(writes[-1])
        return data, writes

    async def aclose(self) -> None:
        self.stream.close("disconnect")
        await asyncio.wait_for(self.runner, 5)


def data_of(chunk: bytes) -> list[str]:
    return [e.data for e in EventStreamParser().feed(chunk)]


async def open_writes(hub: Hub, topics: list[str], **options: object) -> Writes:
    writes = Writes(await hub.open(topics, **options))  # type: ignore[arg-type]
    await writes.next()  # the opening write
    return writes


async def test_a_run_of_events_reaches_every_subscriber_in_one_write(hub: Hub) -> None:
    readers = [await open_writes(hub, ["t"]) for _ in range(3)]
    await hub.publish("t", "quiet spell over")  # the first event goes out at once
    for reader in readers:
        assert data_of(await reader.next()) == ["quiet spell over"]
    for i in range(5):
        await hub.publish("t", str(i))
    received = [await reader.events(5) for reader in readers]
    for data, writes in received:
        assert data == ["0", "1", "2", "3", "4"]
        assert len(writes) <= 2
    first_writes = [writes[0] for _data, writes in received]
    assert first_writes[0] is first_writes[1] is first_writes[2]  # one join, shared
    for reader in readers:
        await reader.aclose()


async def test_a_filtered_event_after_a_pending_run_keeps_seq_order(hub: Hub) -> None:
    grant = TopicGrant.of([Selector.exact("b")])
    both = await open_writes(hub, ["a", "b"], grant=grant)
    await hub.publish("a", "first")  # after a quiet spell: written at once
    assert data_of(await both.next()) == ["first"]
    await hub.publish("a", "pending")  # waits for the next flush, in a run
    await hub.publish("b", "private", private=True)  # pushed at once, after the run
    await hub.publish("a", "after")
    data, _writes = await both.events(3)
    assert data == ["pending", "private", "after"]
    await both.aclose()


async def test_a_tagged_stream_gets_its_run_behind_topic_lines(hub: Hub) -> None:
    tagged = await open_writes(hub, ["t"], tagged=True)
    await hub.publish("t", "first")
    await tagged.next()
    await hub.publish("t", "x")
    await hub.publish("t", "y")
    data, writes = await tagged.events(2)
    assert data == ["x", "y"]
    assert b"".join(writes).count(b"topic: t\n") == 2
    await tagged.aclose()


async def test_a_pending_run_over_the_queue_bound_closes_a_stalled_subscriber_before_the_flush(
    slow_hub: Hub,
) -> None:
    hub = slow_hub
    stalled = await hub.open(["t"])  # never run: it takes nothing
    await hub.publish("t", "first")
    for i in range(120):  # two runs of max_queue_events, pushed before any flush is due
        await hub.publish("t", str(i))
    assert stalled.closed
    assert stalled.close_reason == "slow"


def test_a_run_counts_each_of_its_events_against_the_queue_bound() -> None:
    sub = Subscription(("t",), max_events=5)
    sub.go_live(0)
    sub.push_run([1, 2, 3], [b"a", b"b", b"c"], b"abc")
    assert sub.queued == 3
    assert not sub.closed
    sub.push_run([4, 5, 6], [b"d", b"e", b"f"], b"def")
    assert sub.closed
    assert sub.close_reason == "slow"


def test_a_run_that_overlaps_what_a_subscriber_has_delivers_only_the_new_events() -> None:
    sub = Subscription(("t",))
    sub.go_live(2)  # it has seq 1 and 2 already (a replay)
    sub.push_run([1, 2, 3, 4], [b"a", b"b", b"c", b"d"], b"abcd")
    assert sub.queued == 2
    assert sub.last_seq == 4


async def test_a_run_reaching_a_replaying_subscriber_is_held_and_released_in_order() -> None:
    sub = Subscription(("t",))
    sub.push_run([3, 4], [b"c", b"d"], b"cd")  # not live yet: held aside
    assert sub.queued == 0
    sub.go_live(3)  # the replay ended at 3
    assert sub.queued == 1
    assert sub.take() == b"d"
