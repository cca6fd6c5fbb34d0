"""Counters of a :class:`~ssehub.integrations.mcp.HubEventStore`, and their Prometheus export.

The hot path bumps plain integers; :class:`EventStoreCollector` reads them
when scraped (the :mod:`ssehub.server` metrics idea).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["EventStoreCollector", "EventStoreStats"]


@dataclass(slots=True)
class EventStoreStats:
    """What one store (and every session view of it) did since it was built.

    ``stored``: MCP messages stored; ``primed``: priming events stored;
    ``replays``: replays served; ``replayed``: messages sent by them;
    ``rejected``: replays refused because the id is malformed, unknown, or
    belongs to another stream or session; ``resets``: replays refused because
    retention (or a wiped store) removed history after the id.
    """

    stored: int = 0
    primed: int = 0
    replays: int = 0
    replayed: int = 0
    rejected: int = 0
    resets: int = 0


_HELP = {
    "stored": "MCP messages stored.",
    "primed": "MCP priming events stored.",
    "replays": "MCP stream replays served.",
    "replayed": "MCP messages sent by replays.",
    "rejected": "MCP replays refused: unknown id, or one of another stream or session.",
    "resets": "MCP replays refused: the history after the id is gone.",
}


class EventStoreCollector(Collector):
    """Exports :class:`EventStoreStats` as ``ssehub_mcp_*`` counters."""

    def __init__(self, stats: EventStoreStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        for field in fields(self.stats):
            yield CounterMetricFamily(
                f"ssehub_mcp_{field.name}", _HELP[field.name], value=getattr(self.stats, field.name)
            )
