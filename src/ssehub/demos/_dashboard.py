"""The dashboard's feed: the hub's own numbers, published to ``ssehub/stats``.

Every ``interval`` seconds :meth:`StatsFeed.tick` takes a sample::

    {"n", "boot", "time", "interval", "open_streams", "watchers",
     "published", "delivered", "published_rate", "delivered_rate",
     "opened", "replayed", "resets", "slow_closes",
     "topics": [{"topic", "subscribers", "published", "delivered", "rate"}]}

``published``/``delivered`` count events since this process started; the
rates are per second over the last ``window`` seconds (a sliding window, so a
publisher on the same period as the sampler does not make the chart saw-tooth).
The feed's own topic is left out of every count (it would otherwise report
itself: one event a second per dashboard), and ``watchers`` (the dashboards)
is reported beside ``open_streams``.  ``n`` numbers the samples of one process, ``boot`` names
the process, so a page can drop a sample it already has.

A sample is *published* only while somebody subscribes to ``ssehub/stats``, so
an unwatched hub's history is not filled with its own statistics; the last
samples are kept in memory for ``GET /dashboard/recent``, which the page reads
first to draw its charts at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import HubError
from ..hub import Hub, StoredEvent

__all__ = ["STATS_TOPIC", "StatsFeed"]

logger = logging.getLogger("ssehub.demos")

STATS_TOPIC = "ssehub/stats"


class StatsFeed:
    """Counts live events (except its own) and samples the hub's numbers."""

    def __init__(
        self,
        hub: Hub,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        keep: int = 120,
        max_topics: int = 500,
        top: int = 12,
        window: float = 5.0,
        private: bool = False,
        authorize: Callable[[Request], Awaitable[None]] | None = None,
    ) -> None:
        self.hub = hub
        #: Publish samples as private events: only admin tokens read them.
        self.private = private
        self._authorize = authorize
        self.interval = interval
        self._clock = clock
        self._wall_clock = wall_clock
        self.max_topics = max_topics
        self.top = top
        self.boot = secrets.token_hex(4)
        self.published = 0
        self.delivered = 0
        #: topic -> [published, delivered] since start (the busiest ``max_topics``).
        self.topics: dict[str, list[int]] = {}
        self.samples: deque[dict[str, Any]] = deque(maxlen=keep)
        self._n = 0
        steps = max(1, math.ceil(window / interval)) if interval > 0 else 1
        #: (time, published, delivered, per-topic published) of the last samples.
        self._past: deque[tuple[float, int, int, dict[str, int]]] = deque(maxlen=steps)

    def observe(self, event: StoredEvent, deliveries: int) -> None:
        """Hub observer: count one live event (cheap; runs on the publish path)."""
        topic = event.topic
        if topic == STATS_TOPIC or not self.hub.stats.listed(topic):
            self.topics.pop(topic, None)  # a topic of private events is never listed
            return
        self.published += 1
        self.delivered += deliveries
        counts = self.topics.get(topic)
        if counts is None:
            if len(self.topics) >= self.max_topics:
                del self.topics[min(self.topics, key=lambda t: self.topics[t][0])]
            counts = self.topics[topic] = [0, 0]
        counts[0] += 1
        counts[1] += deliveries

    def sample(self) -> dict[str, Any]:
        """The numbers now, with rates since the previous sample (recorded in ``samples``)."""
        now = self._clock()
        subscribers = self.hub.topic_subscribers()
        watchers = subscribers.get(STATS_TOPIC, 0)
        per_topic = {t: c[0] for t, c in self.topics.items()}
        published_rate = delivered_rate = 0.0
        rates: dict[str, float] = {}
        if self._past:
            then, published, delivered, before = self._past[0]
            span = max(now - then, 1e-9)
            published_rate = (self.published - published) / span
            delivered_rate = (self.delivered - delivered) / span
            rates = {t: (n - before.get(t, 0)) / span for t, n in per_topic.items()}
        self._past.append((now, self.published, self.delivered, per_topic))
        names = (set(self.topics) | set(subscribers)) - {STATS_TOPIC}
        ranked = sorted(
            names,
            key=lambda t: (rates.get(t, 0.0), subscribers.get(t, 0), per_topic.get(t, 0)),
            reverse=True,
        )[: self.top]
        stats = self.hub.stats
        self._n += 1
        sample: dict[str, Any] = {
            "n": self._n,
            "boot": self.boot,
            "time": round(self._wall_clock(), 3),
            "interval": self.interval,
            "open_streams": self.hub.open_streams,
            "watchers": watchers,
            "published": self.published,
            "delivered": self.delivered,
            "published_rate": round(published_rate, 2),
            "delivered_rate": round(delivered_rate, 2),
            "opened": stats.opened,
            "replayed": stats.replayed,
            "resets": stats.resets,
            "slow_closes": stats.slow_closes,
            "topics": [
                {
                    "topic": t,
                    "subscribers": subscribers.get(t, 0),
                    "published": self.topics.get(t, [0, 0])[0],
                    "delivered": self.topics.get(t, [0, 0])[1],
                    "rate": round(rates.get(t, 0.0), 2),
                }
                for t in ranked
            ],
        }
        self.samples.append(sample)
        return sample

    async def tick(self) -> bool:
        """Take a sample; publish it if anyone watches.  Return whether it was published."""
        sample = self.sample()
        if not sample["watchers"]:
            return False
        await self.hub.publish(
            STATS_TOPIC, json.dumps(sample, ensure_ascii=False), "stats", private=self.private
        )
        return True

    async def run(self) -> None:
        """Tick every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except HubError as exc:
                logger.warning("dashboard: stats not published: %s", exc)

    def routes(self) -> list[BaseRoute]:
        return [Route("/dashboard/recent", self.recent_endpoint, methods=["GET"])]

    async def recent_endpoint(self, request: Request) -> Response:
        if self._authorize is not None:
            await self._authorize(request)
        return JSONResponse(
            {"topic": STATS_TOPIC, "interval": self.interval, "samples": list(self.samples)}
        )
