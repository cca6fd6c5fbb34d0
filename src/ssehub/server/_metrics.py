"""Prometheus ``/metrics``: the hub's counters, read at scrape time.

A custom collector reads :class:`~ssehub.hub.HubStats` when scraped, so the
hot path only bumps plain integers.  Each app has its own registry.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from ..hub import Hub

__all__ = ["HubCollector", "MetricsEndpoint"]


class HubCollector(Collector):
    """Exports a hub's counters and gauges."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        stats = self.hub.stats
        yield GaugeMetricFamily(
            "ssehub_open_streams", "Event streams open now.", self.hub.open_streams
        )
        counters = (
            (
                "ssehub_events_published",
                "Events published (seen on the live feed).",
                stats.published,
            ),
            ("ssehub_events_delivered", "Events queued to subscribers.", stats.delivered),
            ("ssehub_events_replayed", "Events replayed from history on resume.", stats.replayed),
            (
                "ssehub_slow_subscriber_closes",
                "Streams closed for falling behind.",
                stats.slow_closes,
            ),
            ("ssehub_write_timeouts", "Streams closed on a blocked write.", stats.write_timeouts),
            ("ssehub_cursor_resets", "Reset events sent for unusable cursors.", stats.resets),
            ("ssehub_streams_opened", "Streams opened since start.", stats.opened),
        )
        for name, documentation, value in counters:
            yield CounterMetricFamily(name, documentation, value=value)
        per_topic = CounterMetricFamily(
            "ssehub_topic_events_published", "Events published per topic.", labels=["topic"]
        )
        for topic, value in stats.per_topic_published.items():
            per_topic.add_metric([topic], value)
        yield per_topic


class MetricsEndpoint:
    """``GET /metrics`` in the Prometheus text format."""

    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HubCollector(hub))

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
