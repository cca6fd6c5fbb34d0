"""The dashboard feed: counts that leave its own events out, rates, publishing only when watched."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from ssehub.demos._dashboard import STATS_TOPIC, StatsFeed
from ssehub.hub import Hub, open_backend


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = Hub(open_backend("memory"))
    await hub.start(background=False)
    try:
        yield hub
    finally:
        await hub.aclose()


async def test_counts_and_rates_leave_the_feeds_own_topic_out(hub: Hub) -> None:
    clock = _Clock()
    feed = StatsFeed(hub, interval=1.0, clock=clock, window=1.0)
    hub.add_observer(feed.observe)
    watcher = await hub.open([STATS_TOPIC])
    news = await hub.open(["新闻"])
    try:
        first = feed.sample()
        for _ in range(4):
            await hub.publish("新闻", "hello")
        for _ in range(3):
            await hub.publish(STATS_TOPIC, "{}", "stats")
        clock.now += 2.0
        second = feed.sample()
    finally:
        watcher.close()
        news.close()
    assert first["published"] == 0
    assert second["published"] == 4
    assert second["delivered"] == 4
    assert second["published_rate"] == 2.0
    assert second["delivered_rate"] == 2.0
    assert second["open_streams"] == 2
    assert second["watchers"] == 1
    assert [t["topic"] for t in second["topics"]] == ["新闻"]
    assert second["topics"][0] == {
        "topic": "新闻",
        "subscribers": 1,
        "published": 4,
        "delivered": 4,
        "rate": 2.0,
    }
    assert second["n"] == first["n"] + 1


async def test_rates_use_a_sliding_window(hub: Hub) -> None:
    clock = _Clock()
    feed = StatsFeed(hub, interval=1.0, clock=clock, window=4.0)
    hub.add_observer(feed.observe)
    feed.sample()
    rates = []
    for second in range(8):
        if second % 2 == 0:
            for _ in range(10):  # a burst every other second
                await hub.publish("burst", "x")
        clock.now += 1.0
        rates.append(feed.sample()["published_rate"])
    assert rates[-4:] == [5.0, 5.0, 5.0, 5.0]


async def test_samples_are_published_only_while_someone_watches(hub: Hub) -> None:
    feed = StatsFeed(hub, interval=1.0)
    hub.add_observer(feed.observe)
    assert await feed.tick() is False
    assert (await hub.backend.read([STATS_TOPIC], 0, 10)).events == []
    watcher = await hub.open([STATS_TOPIC])
    try:
        assert await feed.tick() is True
    finally:
        watcher.close()
    events = (await hub.backend.read([STATS_TOPIC], 0, 10)).events
    assert [e.event for e in events] == ["stats"]
    assert json.loads(events[0].data)["watchers"] == 1
    assert len(feed.samples) == 2


async def test_tracked_topics_are_bounded(hub: Hub) -> None:
    feed = StatsFeed(hub, max_topics=3)
    hub.add_observer(feed.observe)
    for name in ("a", "a", "b", "b", "c", "d"):
        await hub.publish(name, "x")
    assert len(feed.topics) == 3
    assert {"a", "b"} <= set(feed.topics)
