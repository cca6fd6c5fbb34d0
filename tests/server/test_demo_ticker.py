"""The ticker demo's publisher, stepped by hand with a seeded random source."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

import pytest

from ssehub.demos._ticker import DEFAULT_SYMBOLS, Symbol, Ticker
from ssehub.hub import Hub, open_backend


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = Hub(open_backend("memory"))
    await hub.start(background=False)
    try:
        yield hub
    finally:
        await hub.aclose()


def test_the_walk_is_reproducible_from_the_seed(hub: Hub) -> None:
    one = Ticker(hub, rng=random.Random(7), wall_clock=lambda: 1.0)
    two = Ticker(hub, rng=random.Random(7), wall_clock=lambda: 1.0)
    assert [one.step() for _ in range(5)] == [two.step() for _ in range(5)]
    other = Ticker(hub, rng=random.Random(8), wall_clock=lambda: 1.0)
    assert other.step() != Ticker(hub, rng=random.Random(7), wall_clock=lambda: 1.0).step()


def test_each_step_reports_the_change_from_the_previous_price(hub: Hub) -> None:
    ticker = Ticker(hub, rng=random.Random(1), symbols=(Symbol("AAPL", "苹果", 100.0),))
    previous = 100.0
    for _ in range(50):
        (payload,) = ticker.step()
        price = payload["price"]
        assert isinstance(price, float)
        assert price > 0
        assert payload["change"] == round(price - previous, 2)
        assert payload["open"] == 100.0
        previous = price


async def test_a_tick_publishes_one_price_event_per_symbol_topic(hub: Hub) -> None:
    ticker = Ticker(hub, rng=random.Random(3), wall_clock=lambda: 1700000000.0)
    assert ticker.recent.since(hub) is None
    await ticker.tick()
    await ticker.tick()
    for s in DEFAULT_SYMBOLS:
        events = (await hub.backend.read([f"ticker/{s.symbol}"], 0, 10)).events
        assert [e.event for e in events] == ["price", "price"]
        data = json.loads(events[-1].data)
        assert data["symbol"] == s.symbol
        assert data["name"] == s.name
        assert data["time"] == 1700000000.0
        assert data["price"] == ticker.prices[s.symbol]
    since = ticker.recent.since(hub)
    assert since == f"{hub.backend.epoch}-0"  # replays from the first tick on
