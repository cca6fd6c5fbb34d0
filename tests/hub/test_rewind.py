"""Late joiners: ``since=earliest`` / ``rewind=N`` / ``rewind=30s`` on every store (issue 14).

A fresh stream asking for history gets the retained events it never saw, then
live ones; a cursor always wins; garbage is refused before anything opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ssehub.errors import InvalidRewindError
from ssehub.hub import EARLIEST, RESET_EVENT, Hub, Retention, Rewind, Stream, parse_rewind
from ssehub.protocol import Event, EventStreamParser
from tests.support.clock import FakeClock
from tests.support.hubs import NO_BOUNDS, StoreKind, make_backend, open_hub

_PREFIXES = itertools.count()
HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def new_hub(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HubFactory]:
    """Opens a hub on a fresh store of each kind, with a fake wall clock."""
    kind: StoreKind = request.param
    redis_url = request.getfixturevalue("shared_redis_server").url if kind == "redis" else None
    async with contextlib.AsyncExitStack() as stack:

        async def factory(retention: Retention = NO_BOUNDS, clock: FakeClock | None = None) -> Hub:
            clock = clock or FakeClock()
            backend = make_backend(
                kind,
                retention=retention,
                clock=clock,
                path=tmp_path / "hub.db",
                redis_url=redis_url,
                prefix=f"rewind-{next(_PREFIXES)}",
            )
            return await stack.enter_async_context(open_hub(backend, wall_clock=clock))

        yield factory


class Reader:
    """Reads a hub stream's events through the parser, a few at a time."""

    def __init__(self, stream: Stream) -> None:
        self.parser = EventStreamParser()
        self.chunks = stream.chunks()
        self.events: list[Event] = []

    async def take(self, count: int, timeout: float = 5.0) -> list[Event]:
        """Read until ``count`` events in all have arrived; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self.events.extend(self.parser.feed(await anext(self.chunks)))
        return self.events

    async def aclose(self) -> None:
        await self.chunks.aclose()


async def read_events(stream: Stream, count: int) -> list[Event]:
    reader = Reader(stream)
    try:
        return await reader.take(count)
    finally:
        await reader.aclose()


async def publish_all(hub: Hub, topic: str, items: list[str]) -> list[str]:
    return [(await hub.publish(topic, item)).id for item in items]


async def test_since_earliest_gives_every_retained_event_then_live(new_hub: HubFactory) -> None:
    hub = await new_hub(Retention(max_events=3, max_age=None))
    await publish_all(hub, "t", ["1", "2", "3", "4", "5"])  # retention keeps 3, 4, 5
    await hub.publish("other", "x")
    reader = Reader(await hub.open(["t"], rewind=EARLIEST))
    await reader.take(3)
    await hub.publish("t", "6")
    events = await reader.take(4)
    await reader.aclose()
    assert [e.data for e in events] == ["3", "4", "5", "6"]
    assert RESET_EVENT not in {e.event for e in events}


async def test_rewind_n_gives_the_last_n_events_of_the_topics(new_hub: HubFactory) -> None:
    hub = await new_hub()
    await publish_all(hub, "t", ["1", "2", "3"])
    await hub.publish("other", "x")
    await publish_all(hub, "t", ["4"])
    events = await read_events(await hub.open(["t"], rewind=Rewind(events=2)), 2)
    assert [e.data for e in events] == ["3", "4"]


async def test_rewind_beyond_the_history_gives_all_of_it(new_hub: HubFactory) -> None:
    hub = await new_hub()
    await publish_all(hub, "t", ["1", "2"])
    events = await read_events(await hub.open(["t"], rewind=Rewind(events=50)), 2)
    assert [e.data for e in events] == ["1", "2"]


async def test_rewind_by_duration_starts_at_the_first_event_that_recent(
    new_hub: HubFactory,
) -> None:
    clock = FakeClock(10_000.0)
    hub = await new_hub(clock=clock)
    await publish_all(hub, "t", ["old"])
    clock.advance(60)
    await publish_all(hub, "t", ["recent-1", "recent-2"])
    clock.advance(5)
    events = await read_events(await hub.open(["t"], rewind=Rewind(seconds=30)), 2)
    assert [e.data for e in events] == ["recent-1", "recent-2"]


async def test_a_last_event_id_wins_over_a_rewind(new_hub: HubFactory) -> None:
    hub = await new_hub()
    ids = await publish_all(hub, "t", ["1", "2", "3"])
    stream = await hub.open(["t"], ids[1], rewind=EARLIEST)
    events = await read_events(stream, 1)
    assert [e.data for e in events] == ["3"]


@pytest.mark.parametrize(
    ("since", "rewind"),
    [
        ("latest", None),
        ("", None),
        (None, "0"),
        (None, "-1"),
        (None, "10001"),
        (None, "1e3"),
        (None, "30x"),
        (None, "0s"),
        (None, "9999999h"),
        (None, " 5"),
        (None, "５"),
        ("earliest", "5"),
    ],
)
def test_garbage_since_and_rewind_values_are_refused(since: str | None, rewind: str | None) -> None:
    with pytest.raises(InvalidRewindError):
        parse_rewind(since, rewind)


@pytest.mark.parametrize(
    ("since", "rewind", "expected"),
    [
        ("earliest", None, EARLIEST),
        (None, "50", Rewind(events=50)),
        (None, "30s", Rewind(seconds=30.0)),
        (None, "1.5m", Rewind(seconds=90.0)),
        (None, "250ms", Rewind(seconds=0.25)),
        (None, "2h", Rewind(seconds=7200.0)),
        (None, None, None),
    ],
)
def test_documented_since_and_rewind_forms_parse(
    since: str | None, rewind: str | None, expected: Rewind | None
) -> None:
    assert parse_rewind(since, rewind) == expected
