"""The hub's rules, deterministic: fake clock, seeded random, in-memory store, no server."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from ssehub.errors import InvalidEventError, InvalidTopicError, OversizedEventError
from ssehub.hub import (
    RESET_EVENT,
    Hub,
    HubClosingError,
    HubConfig,
    Retention,
    Selector,
    Stream,
    TopicGrant,
)
from ssehub.hub.backends.memory import MemoryBackend
from ssehub.protocol import Event, EventStreamParser
from tests.support.clock import FakeClock
from tests.support.hubs import open_hub
from tests.support.stuck import StuckWriter


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with open_hub(
        MemoryBackend(retention=Retention(max_events=50, max_age=None)),
        HubConfig(
            heartbeat_interval=15.0, max_queue_events=20, write_timeout=30.0, flush_interval=0
        ),
        clock=FakeClock(100.0),
        seed=7,
    ) as hub:
        yield hub


class Reader:
    """Reads a hub stream's chunks through a browser-grade parser.

    With the in-memory store nothing waits on real I/O, so "idle" means: the
    next chunk is still not there after the event loop ran everything ready.
    """

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.parser = EventStreamParser()
        self.chunks = stream.chunks()
        self.raw: list[bytes] = []
        self._pending: asyncio.Future[bytes] | None = None

    async def read_until_idle(self) -> list[Event]:
        """Consume every chunk available now."""
        events: list[Event] = []
        while True:
            if self._pending is None:
                self._pending = asyncio.ensure_future(anext(self.chunks))
            for _ in range(100):
                if self._pending.done():
                    break
                await asyncio.sleep(0)
            else:
                return events
            pending, self._pending = self._pending, None
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return events
            self.raw.append(chunk)
            events.extend(self.parser.feed(chunk))


async def test_fresh_stream_opens_with_retry_and_the_current_cursor(hub: Hub) -> None:
    published = await hub.publish("news", "before")
    reader = Reader(await hub.open(["news"]))
    assert await reader.read_until_idle() == []
    assert reader.raw[0] == f"id: {published.id}\nretry: 3000\n\n".encode()
    assert reader.parser.last_event_id == published.id


async def test_live_events_reach_the_topics_subscribers_only(hub: Hub) -> None:
    news, other = Reader(await hub.open(["news"])), Reader(await hub.open(["sport"]))
    await news.read_until_idle()
    await other.read_until_idle()
    first = await hub.publish("news", "hello\nworld", "headline")
    events = await news.read_until_idle()
    assert events == [Event(data="hello\nworld", event="headline", id=first.id, retry=3000)]
    assert await other.read_until_idle() == []


async def test_an_event_is_encoded_once_for_all_subscribers_of_a_topic(hub: Hub) -> None:
    readers = [Reader(await hub.open(["t"])) for _ in range(3)]
    for reader in readers:
        await reader.read_until_idle()
    await hub.publish("t", "shared")
    for reader in readers:
        await reader.read_until_idle()
    assert readers[0].raw[-1] is readers[1].raw[-1] is readers[2].raw[-1]


async def test_resume_replays_exactly_the_missed_events_then_live(hub: Hub) -> None:
    ids = [(await hub.publish("t", f"e{i}")).id for i in range(5)]
    await hub.publish("unrelated", "x")
    reader = Reader(await hub.open(["t"], last_event_id=ids[1]))
    replayed = await reader.read_until_idle()
    assert [(e.data, e.id) for e in replayed] == [(f"e{i}", ids[i]) for i in (2, 3, 4)]
    live = await hub.publish("t", "e5")
    assert [(e.data, e.id) for e in await reader.read_until_idle()] == [("e5", live.id)]
    assert hub.stats.replayed == 3


async def test_multi_topic_resume_merges_topics_in_publish_order(hub: Hub) -> None:
    cursor = (await hub.publish("a", "a0")).id
    for data, topic in [("b1", "b"), ("a2", "a"), ("c3", "c"), ("b4", "b")]:
        await hub.publish(topic, data)
    reader = Reader(await hub.open(["a", "b"], last_event_id=cursor))
    assert [e.data for e in await reader.read_until_idle()] == ["b1", "a2", "b4"]


async def test_events_published_while_a_replay_is_pending_arrive_once(hub: Hub) -> None:
    cursor = (await hub.publish("t", "seen")).id
    stream = await hub.open(["t"], last_event_id=cursor)
    # Published after the subscription registered but before its replay ran:
    # they are both in history and held as live events.
    for i in range(3):
        await hub.publish("t", f"during{i}")
    reader = Reader(stream)
    events = await reader.read_until_idle()
    await hub.publish("t", "after")
    events += await reader.read_until_idle()
    assert [e.data for e in events] == ["during0", "during1", "during2", "after"]


async def test_cursor_older_than_retained_history_gets_a_reset_then_live(hub: Hub) -> None:
    old = (await hub.publish("t", "first")).id
    for i in range(60):  # retention keeps 50
        last = await hub.publish("t", f"e{i}")
    reader = Reader(await hub.open(["t"], last_event_id=old))
    events = await reader.read_until_idle()
    assert [e.event for e in events] == [RESET_EVENT]
    assert '"reason": "history-gap"' in events[0].data
    assert events[0].id == last.id
    live = await hub.publish("t", "next")
    assert [e.id for e in await reader.read_until_idle()] == [live.id]


@pytest.mark.parametrize(
    ("last_event_id", "reason"),
    [
        ("garbage", "malformed-cursor"),
        ("'; DROP TABLE events; --", "malformed-cursor"),
        ("ffffffff-1", "unknown-epoch"),
        ("\u4e2d\u6587", "malformed-cursor"),
    ],
)
async def test_unusable_cursor_gets_a_documented_reset_event(
    hub: Hub, last_event_id: str, reason: str
) -> None:
    await hub.publish("t", "x")
    reader = Reader(await hub.open(["t"], last_event_id=last_event_id))
    events = await reader.read_until_idle()
    assert [e.event for e in events] == [RESET_EVENT]
    assert f'"reason": "{reason}"' in events[0].data


async def test_cursor_ahead_of_the_store_is_reset(hub: Hub) -> None:
    await hub.publish("t", "x")
    reader = Reader(await hub.open(["t"], last_event_id=f"{hub.backend.epoch}-999"))
    events = await reader.read_until_idle()
    assert '"reason": "cursor-ahead-of-store"' in events[0].data


async def test_slow_subscriber_is_closed_and_others_get_everything(hub: Hub) -> None:
    slow_stream = await hub.open(["t"])
    slow = Reader(slow_stream)
    await slow.read_until_idle()
    fast = Reader(await hub.open(["t"]))
    await fast.read_until_idle()
    received: list[str] = []
    for i in range(30):  # the slow one never reads; its queue holds 20
        await hub.publish("t", f"e{i}")
        received += [e.data for e in await fast.read_until_idle()]
    assert received == [f"e{i}" for i in range(30)]
    sub = slow_stream.subscription
    assert sub.closed
    assert sub.close_reason == "slow"
    assert sub.queued == 0  # what it held was released at once
    assert hub.stats.slow_closes == 1


async def test_heartbeat_goes_only_to_streams_idle_for_the_interval(hub: Hub) -> None:
    clock = hub.clock
    assert isinstance(clock, FakeClock)
    quiet, busy = Reader(await hub.open(["quiet"])), Reader(await hub.open(["busy"]))
    for reader in (quiet, busy):
        await reader.read_until_idle()
    clock.now += 10
    await hub.publish("busy", "x")  # written at clock time 110
    await busy.read_until_idle()
    clock.now += 6
    hub.tick(clock.now)
    await quiet.read_until_idle()
    await busy.read_until_idle()
    assert quiet.raw[-1] == b":\n\n"
    assert busy.raw[-1] != b":\n\n"


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def stuck_stream(
    hub: Hub, *, abort_hook: bool = True
) -> tuple[Stream, StuckWriter, asyncio.Future[str]]:
    """A stream on ``t`` whose client took the opening write, then stopped reading."""
    stream = await hub.open(["t"])
    writer = StuckWriter(accept=1)
    abort = writer.abort if abort_hook else None
    runner = asyncio.ensure_future(stream.run(writer.write, abort))
    await hub.publish("t", "never read")
    await settle()
    return stream, writer, runner


async def test_write_blocked_past_the_deadline_aborts_the_connection(hub: Hub) -> None:
    clock = hub.clock
    assert isinstance(clock, FakeClock)
    stream, writer, runner = await stuck_stream(hub)
    assert writer.blocked
    hub.tick(clock.now + 29)
    assert not stream.closed
    hub.tick(clock.now + 31)
    assert await asyncio.wait_for(runner, 5) == "write-timeout"
    assert writer.aborts == 1
    assert stream.aborted
    assert hub.stats.write_timeouts == 1
    assert hub.open_streams == 0


async def test_without_an_abort_hook_the_stream_cancels_its_own_blocked_write(hub: Hub) -> None:
    clock = hub.clock
    assert isinstance(clock, FakeClock)
    _, _, runner = await stuck_stream(hub, abort_hook=False)
    hub.tick(clock.now + 31)
    assert await asyncio.wait_for(runner, 5) == "write-timeout"
    assert not runner.cancelled()
    assert hub.open_streams == 0


async def test_a_slow_close_during_a_blocked_write_aborts_at_once(hub: Hub) -> None:
    stream, writer, runner = await stuck_stream(hub)
    for i in range(24):  # the queue holds 20
        await hub.publish("t", f"e{i}")
        await settle()
    assert await asyncio.wait_for(runner, 5) == "slow"
    assert writer.aborts == 1
    assert stream.subscription.queued_bytes == 0


async def test_drain_aborts_a_stream_that_does_not_take_its_final_retry(hub: Hub) -> None:
    clock = hub.clock
    assert isinstance(clock, FakeClock)
    _, writer, runner = await stuck_stream(hub)
    hub.drain()
    hub.tick(clock.now + hub.config.drain_timeout / 2)
    assert not runner.done()
    hub.tick(clock.now + hub.config.drain_timeout + 0.1)
    await asyncio.wait_for(runner, 5)
    assert writer.aborts == 1
    assert hub.open_streams == 0


async def test_drain_sends_each_stream_a_jittered_retry_and_ends_it(hub: Hub) -> None:
    readers = [Reader(await hub.open(["t"])) for _ in range(20)]
    for reader in readers:
        await reader.read_until_idle()
    assert hub.drain() == 20
    retries = []
    for reader in readers:
        await reader.read_until_idle()
        assert reader.stream.subscription.closed
        retries.append(reader.parser.retry)
    assert all(r is not None and 1000 <= r <= 10_000 for r in retries)
    assert len(set(retries)) > 10  # spread out, not one value for everybody
    with pytest.raises(HubClosingError):
        await hub.open(["t"])


async def test_an_ended_stream_gets_no_more_events(hub: Hub) -> None:
    stream = await hub.open(["t"])
    stream.end()
    await hub.publish("t", "x")
    assert stream.subscription.queued == 0
    assert hub.open_streams == 0
    assert hub.topic_subscribers() == {}


@pytest.mark.parametrize("topic", ["", "/lead", "trail/", "a//b", "a/../b", "sp ace", "x" * 300])
async def test_publish_refuses_bad_topics_and_stores_nothing(hub: Hub, topic: str) -> None:
    with pytest.raises(InvalidTopicError):
        await hub.publish(topic, "x")
    assert await hub.backend.head() == 0


@pytest.mark.parametrize("event", ["a\nb", "a\rb", "nul\x00", RESET_EVENT])
async def test_publish_refuses_event_types_that_could_forge_fields(hub: Hub, event: str) -> None:
    with pytest.raises(InvalidEventError):
        await hub.publish("t", "x", event)
    assert await hub.backend.head() == 0


@pytest.mark.parametrize("topic", ["chat/42", "价格/AAPL", "a.b~c:d@e-f_g"])
async def test_topic_names_may_hold_slashes_and_any_script(hub: Hub, topic: str) -> None:
    reader = Reader(await hub.open([topic]))
    await reader.read_until_idle()
    await hub.publish(topic, "ok")
    assert [e.data for e in await reader.read_until_idle()] == ["ok"]


async def test_gap_in_the_live_feed_closes_every_stream_so_it_resumes(hub: Hub) -> None:
    streams = [await hub.open(["t"]) for _ in range(3)]
    hub.on_gap()
    assert all(s.closed and s.close_reason == "gap" for s in streams)


async def test_events_close_together_are_coalesced_into_one_write_per_subscriber() -> None:
    hub = Hub(MemoryBackend(), HubConfig(flush_interval=0.05), rng=random.Random(1))
    await hub.start(background=False)
    try:
        stream = await hub.open(["t"])
        writes: asyncio.Queue[bytes] = asyncio.Queue()
        runner = asyncio.ensure_future(stream.run(writes.put))
        await writes.get()  # the opening write
        first = await hub.publish("t", "first")  # after a quiet spell: written at once
        assert (
            await asyncio.wait_for(writes.get(), 5) == f"id: {first.id}\ndata: first\n\n".encode()
        )
        await hub.publish("t", "second")
        await asyncio.sleep(0)
        await hub.publish("t", "third")
        batch = await asyncio.wait_for(writes.get(), 5)
        assert [e.data for e in EventStreamParser().feed(batch)] == ["second", "third"]
        stream.close("disconnect")
        await asyncio.wait_for(runner, 5)
    finally:
        await hub.aclose()


@pytest.mark.parametrize(("data", "event"), [("\ud800", None), ("ok", "\udfff"), ("a\udc80b", "e")])
async def test_lone_surrogate_is_refused_before_anything_is_stored(
    hub: Hub, data: str, event: str | None
) -> None:
    """Issue 9, finding 1: such an event would poison every replay of its topic."""
    with pytest.raises(InvalidEventError):
        await hub.publish("t", data, event)
    assert await hub.backend.head() == 0


async def test_event_over_the_encoded_bound_is_refused_before_storing() -> None:
    """Issue 9, finding 5: a body of newlines grows sevenfold on the wire."""
    hub = Hub(MemoryBackend(), HubConfig(max_event_bytes=70_000, max_queue_bytes=100_000))
    await hub.start(background=False)
    try:
        await hub.publish("t", "x" * 60_000)  # 60 kB of text: fits
        with pytest.raises(OversizedEventError):
            await hub.publish("t", "\n" * 10_000)  # 10 kB of newlines: 70 kB encoded
        assert await hub.backend.head() == 1
    finally:
        await hub.aclose()


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_event_bytes": 5_000_000, "max_queue_bytes": 4_000_000},
        {"replay_batch": 0},
        {"write_timeout": 0},
        {"shutdown_retry_min": 5, "shutdown_retry_max": 1},
        {"heartbeat_interval": -1},
    ],
)
def test_inconsistent_hub_settings_are_refused_at_start(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must|exceeds"):
        HubConfig(**overrides)  # type: ignore[arg-type]


async def test_rows_that_cannot_be_encoded_are_skipped_live_and_on_replay(hub: Hub) -> None:
    """Issue 9, finding 1: a bad row in the store never kills a stream."""
    cursor = (await hub.publish("t", "before")).id
    reader = Reader(await hub.open(["t"]))
    await reader.read_until_idle()
    # Rows written around the hub's checks (an older version, a hand edit).
    await hub.backend.append("t", "\ud800")
    await hub.backend.append("t", "fine", "bad\nevent")
    after = await hub.publish("t", "after")
    assert [e.data for e in await reader.read_until_idle()] == ["after"]
    resumed = Reader(await hub.open(["t"], last_event_id=cursor))
    assert [(e.data, e.id) for e in await resumed.read_until_idle()] == [("after", after.id)]
    assert hub.stats.skipped == 4  # two rows, skipped once live and once on replay
    assert not resumed.stream.closed


async def test_reset_event_echoes_a_long_refused_cursor_cut_short(hub: Hub) -> None:
    reader = Reader(await hub.open(["t"], last_event_id="x" * 100_000))
    events = await reader.read_until_idle()
    assert events[0].event == RESET_EVENT
    assert len(events[0].data) < 200


async def test_a_tagged_stream_names_each_events_topic_live_and_on_replay(hub: Hub) -> None:
    """``?tag=topic``: one ``topic:`` line before the event's lines; untagged streams unchanged."""
    cursor = (await hub.publish("a", "a0")).id
    old_b = await hub.publish("b", "b1", "kind")
    old_a = await hub.publish("价格/a", "a2")
    topics = ["a", "b", "价格/a"]
    tagged = Reader(await hub.open(topics, last_event_id=cursor, tagged=True))
    plain = Reader(await hub.open(topics, last_event_id=cursor))
    await tagged.read_until_idle()
    await plain.read_until_idle()
    assert (
        tagged.raw[1]
        == (
            f"topic: b\nevent: kind\nid: {old_b.id}\ndata: b1\n\n"
            f"topic: 价格/a\nid: {old_a.id}\ndata: a2\n\n"
        ).encode()
    )
    assert (
        plain.raw[1]
        == (f"event: kind\nid: {old_b.id}\ndata: b1\n\nid: {old_a.id}\ndata: a2\n\n").encode()
    )
    live = await hub.publish("b", "b3")
    await tagged.read_until_idle()
    await plain.read_until_idle()
    untagged = f"id: {live.id}\ndata: b3\n\n".encode()
    assert (tagged.raw[-1], plain.raw[-1]) == (b"topic: b\n" + untagged, untagged)
    # A browser-grade parser ignores the unknown field: both read the same events.
    assert tagged.parser.last_event_id == plain.parser.last_event_id == live.id


async def test_tagged_chunks_are_built_once_per_event_and_only_when_asked(hub: Hub) -> None:
    tagged = [Reader(await hub.open(["t"], tagged=True)) for _ in range(2)]
    plain = [Reader(await hub.open(["t"])) for _ in range(2)]
    for reader in tagged + plain:
        await reader.read_until_idle()
    await hub.publish("t", "shared")
    for reader in tagged + plain:
        await reader.read_until_idle()
    assert tagged[0].raw[-1] is tagged[1].raw[-1]
    assert plain[0].raw[-1] is plain[1].raw[-1]
    assert tagged[0].raw[-1] == b"topic: t\n" + plain[0].raw[-1]


async def test_a_tagged_stream_still_gets_private_events_only_with_its_grant(hub: Hub) -> None:
    grant = TopicGrant.of([Selector.exact("mine")])
    cursor = hub.format_cursor(await hub.head())
    await hub.publish("mine", "kept", private=True)
    await hub.publish("theirs", "hidden", private=True)
    replaying = Reader(await hub.open(["mine", "theirs"], cursor, grant=grant, tagged=True))
    live = Reader(await hub.open(["mine", "theirs"], tagged=True))
    await live.read_until_idle()
    assert [e.data for e in await replaying.read_until_idle()] == ["kept"]
    assert replaying.raw[1].startswith(b"topic: mine\n")
    await hub.publish("theirs", "hidden again", private=True)
    await hub.publish("mine", "public")
    assert [e.data for e in await live.read_until_idle()] == ["public"]
    assert b"hidden" not in b"".join(live.raw + replaying.raw)
    assert live.raw[-1].startswith(b"topic: mine\n")


async def test_control_blocks_are_never_tagged(hub: Hub) -> None:
    reader = Reader(await hub.open(["t"], last_event_id="zzz-1", tagged=True))
    events = await reader.read_until_idle()
    assert events[0].event == RESET_EVENT
    assert all(not chunk.startswith(b"topic:") for chunk in reader.raw)
