"""The ticker demo's publisher, stepped by hand with a seeded random source."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssehub.demos._ticker import DEFAULT_SYMBOLS, Symbol, Ticker
from ssehub.hub import Hub, open_backend
from tests.support.processes import HubProcess, free_port, start_hub
from tests.support.sse import open_stream


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


# -- /ticker/events: each price labelled with the topic it was published to ------


@pytest.fixture(scope="module")
def ticker_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    args = ["--store", "memory", "--no-ticker"]
    with start_hub(args, log_dir=tmp_path_factory.mktemp("ticker")) as proc:
        yield proc


def _labelled(events: list[Any]) -> list[tuple[str, Any]]:
    return [(json.loads(e.data)["topic"], json.loads(json.loads(e.data)["data"])) for e in events]


def test_ticker_events_label_each_price_with_its_topic_not_its_data(
    ticker_hub: HubProcess,
) -> None:
    """Issue 9, finding 16: the page believed ``data.symbol`` over the topic."""
    hub = ticker_hub
    url = f"{hub.url}/ticker/events?symbol=AAPL&symbol=MSFT"
    with open_stream(url) as reader:
        reader.read_until(b"retry: 3000")
        forged = {"symbol": "MSFT", "price": 1.0}
        for topic, data in [("ticker/AAPL", forged), ("ticker/NVDA", forged)]:
            body = {"event": "price", "data": data}
            assert httpx.post(f"{hub.url}/topics/{topic}", json=body, timeout=10).status_code == 201
        body = {"event": "note", "data": "not a price"}
        assert httpx.post(f"{hub.url}/topics/ticker/MSFT", json=body, timeout=10).is_success
        body = {"event": "price", "data": {"price": 2.0}}
        msft = httpx.post(f"{hub.url}/topics/ticker/MSFT", json=body, timeout=10).json()["id"]
        events = reader.read_events(2)
    # NVDA was not asked for; the note is not a price; ids are the hub's cursors
    assert _labelled(events) == [("ticker/AAPL", forged), ("ticker/MSFT", {"price": 2.0})]
    assert [e.event for e in events] == ["price", "price"]
    assert events[-1].id == msft


def test_ticker_events_resume_from_history_with_the_topics_read_from_the_store(
    tmp_path: Path,
) -> None:
    """Replayed events (published before the hub saw them live) are labelled from the store."""
    store = ["--store", f"sqlite:{tmp_path / 'hub.db'}", "--no-ticker"]
    port = free_port()
    with start_hub(store, port=port, log_dir=tmp_path) as hub:
        ids = [
            httpx.post(
                f"{hub.url}/topics/ticker/{symbol}",
                json={"event": "price", "data": {"symbol": "ZZZ", "price": price}},
                timeout=10,
            ).json()["id"]
            for symbol, price in [("AAPL", 1.0), ("MSFT", 2.0), ("AAPL", 3.0)]
        ]
    with start_hub(store, port=port, log_dir=tmp_path) as hub:  # nothing seen live
        url = f"{hub.url}/ticker/events?symbol=AAPL&symbol=MSFT"
        with open_stream(url, headers={"Last-Event-ID": ids[0]}) as reader:
            events = reader.read_events(2)
    assert [(topic, data["price"]) for topic, data in _labelled(events)] == [
        ("ticker/MSFT", 2.0),
        ("ticker/AAPL", 3.0),
    ]
    assert [e.id for e in events] == ids[1:]


@pytest.mark.parametrize(
    "query", ["", "?symbol=", "?symbol=../etc", "?symbol=" + "A" * 21, "?symbol=A" * 51]
)
def test_ticker_events_refuse_bad_symbols(ticker_hub: HubProcess, query: str) -> None:
    answer = httpx.get(f"{ticker_hub.url}/ticker/events{query}", timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_symbols"
