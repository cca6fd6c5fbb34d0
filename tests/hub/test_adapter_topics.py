"""Adapter topics: a protocol adapter (Mercure) owns a reserved topic's wire format and filter.

Issue 13.  ``Hub.adopt_topic`` reserves a topic and names its encoder;
``Hub.open(accept=…)`` gives a stream its own test of each event, which
decides alone (private events included) — live and on replay, in the hub's
one order, with each event encoded once for every stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ssehub.errors import InvalidTopicError
from ssehub.hub import Hub, StoredEvent, Stream
from ssehub.protocol import EventStreamParser, ServerSentEvent, encode
from tests.support.hubs import open_hub

TOPIC = "adapter/feed"


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with open_hub() as hub:
        yield hub


class Encoder:
    """Puts ``data`` on the wire upper-cased with an ``a-{seq}`` id; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, row: StoredEvent) -> bytes:
        self.calls += 1
        return encode(ServerSentEvent(data=row.data.upper(), id=f"a-{row.seq}"))


async def datas(stream: Stream, count: int) -> list[str]:
    """The first ``count`` events' data (the opening control block dispatches none)."""
    parser = EventStreamParser()
    found: list[str] = []
    chunks = stream.chunks()
    try:
        while len(found) < count:
            chunk = await asyncio.wait_for(anext(chunks), timeout=5)
            found.extend(e.data for e in parser.feed(chunk))
    finally:
        await chunks.aclose()
    return found


async def test_an_adopted_topic_is_published_and_streamed_only_by_its_adapter(hub: Hub) -> None:
    hub.adopt_topic(TOPIC, Encoder())
    with pytest.raises(InvalidTopicError):
        await hub.publish(TOPIC, "forged")
    with pytest.raises(InvalidTopicError):
        await hub.publish("plain", "x", adapter=True)
    with pytest.raises(InvalidTopicError):
        await hub.open([TOPIC])
    with pytest.raises(InvalidTopicError):
        await hub.open(["plain", TOPIC])


async def test_accept_decides_live_and_on_replay_with_one_encoding_per_event(hub: Hub) -> None:
    encoder = Encoder()
    hub.adopt_topic(TOPIC, encoder)
    start = hub.format_cursor(await hub.head())
    await hub.publish(TOPIC, "keep-1", adapter=True)
    await hub.publish(TOPIC, "drop-1", adapter=True)
    await hub.publish(TOPIC, "keep-private", adapter=True, private=True)

    def keep(row: StoredEvent) -> bool:
        return row.data.startswith("keep")

    replaying = await hub.open([TOPIC], start, accept=keep)
    live = [await hub.open([TOPIC], accept=keep) for _ in range(3)]
    await hub.publish(TOPIC, "keep-2", adapter=True)
    await hub.publish(TOPIC, "drop-2", adapter=True)
    assert await datas(replaying, 3) == ["KEEP-1", "KEEP-PRIVATE", "KEEP-2"]
    for stream in live:
        assert await datas(stream, 1) == ["KEEP-2"]
    # Live: keep-2 once for every stream; the replay (run after keep-2 was stored) reads
    # and encodes the three rows it keeps, and drops the live copy of keep-2 by seq.
    assert encoder.calls == 1 + 3


async def test_a_plain_topics_private_events_still_need_the_grant(hub: Hub) -> None:
    hub.adopt_topic(TOPIC, Encoder())
    stream = await hub.open(["plain"])
    await hub.publish("plain", "secret", private=True)
    await hub.publish("plain", "public")
    assert await datas(stream, 1) == ["public"]


async def test_an_adapter_topics_stream_is_never_tagged(hub: Hub) -> None:
    """The adapter owns its topic's wire format: ``tagged`` adds no ``topic:`` line."""
    hub.adopt_topic(TOPIC, Encoder())
    start = hub.format_cursor(await hub.head())
    await hub.publish(TOPIC, "old", adapter=True)
    streams = [
        await hub.open([TOPIC], start, accept=lambda row: True, tagged=True),
        await hub.open([TOPIC], accept=lambda row: True, tagged=True),
    ]
    await hub.publish(TOPIC, "new", adapter=True)
    for stream in streams:
        chunks = stream.chunks()
        seen = b""
        while b"NEW" not in seen:
            seen += await asyncio.wait_for(anext(chunks), timeout=5)
        await chunks.aclose()
        assert b"topic:" not in seen
