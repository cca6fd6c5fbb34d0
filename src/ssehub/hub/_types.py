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
    """How much history each topic keeps, and how much the whole store may hold.

    ``max_events`` bounds the events kept per topic; ``max_age`` (float
    seconds) drops events older than that.  The store's quotas bound what
    retention alone does not: ``max_topics`` distinct topics with events, and
    ``max_bytes`` stored bytes (each event counted as the UTF-8 bytes of its
    data and type, as reads count their ``max_bytes``), both
    for the whole store — every process sharing an SQLite file, every node
    sharing a Redis.  An append past a quota is refused with
    :class:`~ssehub.errors.QuotaExceededError` and stores nothing; an append to
    a topic at its ``max_events`` bound is credited the bytes of the event it
    pushes out (see :mod:`ssehub.hub.backends._quota`).  ``None`` means no
    bound of that kind; at least one bound should be set for a long-running
    hub.
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
    max_topics: int | None = field(
        default=10_000,
        metadata={
            "flag": "--max-topics",
            "help": "Distinct topics the store holds at once (a publish that would create "
            "one more is refused with 507; 0 = unbounded).",
        },
    )
    max_bytes: int | None = field(
        default=1024 * 1024 * 1024,
        metadata={
            "flag": "--max-stored-bytes",
            "help": "Bytes of event data the store holds at once (a publish past it is "
            "refused with 507 until retention frees space; 0 = unbounded).",
        },
    )
