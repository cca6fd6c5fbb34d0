"""The stock-ticker demo: a random walk of a few symbols, published to the hub.

Each tick publishes one ``price`` event per symbol to topic ``ticker/<SYMBOL>``
with data ``{"symbol", "name", "price", "change", "open", "time"}``: ``price``
rounded to cents, ``change`` since the previous tick, ``open`` the first price
of this run, ``time`` in seconds since the epoch.  Any program can publish to
the same topics (only ``symbol`` and ``price`` are required by the page).

The walk is multiplicative (``price *= 1 + gauss(0, volatility)``), drawn from
an injected :class:`random.Random`; :meth:`Ticker.tick` is one step, so tests
drive it directly.  ``GET /ticker/symbols`` tells the page which symbols exist
and a cursor to replay the last minute or two of prices from the hub.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import HubError
from ..hub import Hub
from ._config import RecentCursor

__all__ = ["DEFAULT_SYMBOLS", "Symbol", "Ticker"]

logger = logging.getLogger("ssehub.demos")


@dataclass(frozen=True, slots=True)
class Symbol:
    """A ticker symbol, its display name and starting price."""

    symbol: str
    name: str
    start: float


DEFAULT_SYMBOLS = (
    Symbol("AAPL", "苹果 Apple", 190.0),
    Symbol("MSFT", "微软 Microsoft", 420.0),
    Symbol("NVDA", "英伟达 NVIDIA", 120.0),
    Symbol("TSLA", "特斯拉 Tesla", 250.0),
    Symbol("BABA", "阿里巴巴 Alibaba", 85.0),
)


class Ticker:
    """Moves prices one step per :meth:`tick` and publishes them."""

    def __init__(
        self,
        hub: Hub,
        *,
        symbols: tuple[Symbol, ...] = DEFAULT_SYMBOLS,
        rng: random.Random | None = None,
        interval: float = 1.0,
        volatility: float = 0.004,
        enabled: bool = True,
        wall_clock: Callable[[], float] = time.time,
        keep: int = 120,
    ) -> None:
        self.hub = hub
        self.symbols = symbols
        self.rng = rng or random.Random()
        self.interval = interval
        self.volatility = volatility
        self.enabled = enabled
        self._wall_clock = wall_clock
        self.prices = {s.symbol: s.start for s in symbols}
        self.recent = RecentCursor(keep)

    def step(self) -> list[dict[str, object]]:
        """Move every price one step; return the events' payloads (nothing published)."""
        now = round(self._wall_clock(), 3)
        payloads: list[dict[str, object]] = []
        for s in self.symbols:
            old = self.prices[s.symbol]
            new = max(0.01, round(old * (1 + self.rng.gauss(0.0, self.volatility)), 2))
            self.prices[s.symbol] = new
            payloads.append(
                {
                    "symbol": s.symbol,
                    "name": s.name,
                    "price": new,
                    "change": round(new - old, 2),
                    "open": s.start,
                    "time": now,
                }
            )
        return payloads

    async def tick(self) -> None:
        """One step, published: one ``price`` event per symbol."""
        for index, payload in enumerate(self.step()):
            published = await self.hub.publish(
                f"ticker/{payload['symbol']}", json.dumps(payload, ensure_ascii=False), "price"
            )
            if index == 0:
                self.recent.add(published.seq)

    async def run(self) -> None:
        """Tick every ``interval`` seconds until cancelled; a store outage is logged, not fatal."""
        while True:
            try:
                await self.tick()
            except HubError as exc:
                logger.warning("ticker: prices not published: %s", exc)
            await asyncio.sleep(self.interval)

    def routes(self) -> list[BaseRoute]:
        return [Route("/ticker/symbols", self.symbols_endpoint, methods=["GET"])]

    async def symbols_endpoint(self, request: Request) -> Response:
        return JSONResponse(
            {
                "publisher": self.enabled,
                "interval": self.interval,
                "symbols": [{"symbol": s.symbol, "name": s.name} for s in self.symbols],
                "topics": [f"ticker/{s.symbol}" for s in self.symbols],
                "since": self.recent.since(self.hub) if self.enabled else None,
            }
        )
