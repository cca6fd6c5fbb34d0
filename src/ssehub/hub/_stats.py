"""The hub's counters: :class:`HubStats` (plain numbers; ``ssehub.server`` exports them).

Per-topic tables are bounded (:attr:`HubStats.MAX_TRACKED_TOPICS`), and a topic
that ever carried a private event leaves every listing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HubStats"]


@dataclass(slots=True)
class HubStats:
    """Counters since the hub started (plain ints; ``ssehub.server`` exports them)."""

    published: int = 0
    delivered: int = 0
    replayed: int = 0
    slow_closes: int = 0
    write_timeouts: int = 0
    resets: int = 0
    opened: int = 0
    #: Stored rows that could not be encoded and were skipped (live or on replay).
    skipped: int = 0
    #: Flushes of live events, and the loop time their writes took (wake to last write).
    flushes: int = 0
    flush_seconds: float = 0.0
    #: How late the hub's periodic tick woke (seconds): the event loop's lag, last seen.
    loop_lag: float = 0.0
    per_topic_published: dict[str, int] = field(default_factory=dict)
    per_topic_delivered: dict[str, int] = field(default_factory=dict)
    #: Topics that carried a private event (the most recent ``MAX_TRACKED_TOPICS``):
    #: never listed by the per-topic tables, :meth:`Hub.topic_subscribers` or dashboards.
    private_topics: dict[str, None] = field(default_factory=dict)

    #: At most this many topics are tracked per table (the busiest stay).
    MAX_TRACKED_TOPICS = 1000

    def mark_private(self, topic: str) -> None:
        """Note that ``topic`` carries private events: it leaves every listing."""
        table = self.private_topics
        table.pop(topic, None)
        table[topic] = None
        if len(table) > self.MAX_TRACKED_TOPICS:
            del table[next(iter(table))]
        self.per_topic_published.pop(topic, None)
        self.per_topic_delivered.pop(topic, None)

    def listed(self, topic: str) -> bool:
        """Whether ``topic`` may be listed (it never carried a private event)."""
        return topic not in self.private_topics

    def count_topic(self, table: dict[str, int], topic: str, n: int) -> None:
        if topic not in table and len(table) >= self.MAX_TRACKED_TOPICS:
            table.pop(min(table, key=table.__getitem__))
        table[topic] = table.get(topic, 0) + n
