"""Value objects of the hub: stored events, read results, retention."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ReadResult", "Retention", "StoredEvent"]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One published event as the store keeps it.

    ``seq`` is minted by the store (the SQLite file, the Redis server), never
    by a hub process, and is strictly increasing across *all* topics of one
    store: it is what makes one cursor valid for any topic set and on any node.
    ``event`` is the event type (``None``: the default ``message``); ``time``
    is the publish time in seconds since the epoch, as the store saw it.
    ``replayed`` is true only on what ``append`` returns for a repeated
    idempotency key (the first event again, nothing stored); it takes no part
    in comparisons.  ``private`` events reach only subscribers whose grant
    selects their topic (the hub filters; every store keeps the flag).
    """

    seq: int
    topic: str
    data: str
    event: str | None = None
    time: float = 0.0
    private: bool = False
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What :meth:`Backend.read` found after a cursor.

    ``events`` are in ascending ``seq`` order.  ``gap`` is true when retention
    already removed at least one event of the topics that came after the
    cursor: the reader can't be brought up to date exactly and must be reset.
    ``more`` is true when ``limit`` (or a byte bound) cut the result short.
    """

    events: list[StoredEvent]
    gap: bool = False
    more: bool = False


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history each topic keeps.

    ``max_events`` bounds the events kept per topic; ``max_age`` (float
    seconds) drops events older than that.  ``None`` means no bound of that
    kind; at least one bound should be set for a long-running hub.
    """

    max_events: int | None = field(
        default=10_000,
        metadata={
            "flag": "--retention-events",
            "help": "History kept per topic, in events (0 = unbounded).",
        },
    )
    max_age: float | None = field(
        default=24 * 3600.0,
        metadata={
            "flag": "--retention-age",
            "unit": "duration",
            "help": "History kept, by age (e.g. 30m, 24h, 7d; 0 or none = unbounded).",
        },
    )
