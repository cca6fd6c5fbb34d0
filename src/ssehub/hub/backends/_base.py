"""The one small interface every history store implements.

A backend stores events, mints their ``seq`` (strictly increasing across all
topics of the store), answers reads after a cursor, and feeds live events to
the hub in ``seq`` order.  ``tests/hub/test_backend_contract.py`` is the
contract every backend passes.

Live feed conventions: after :meth:`Backend.start`, the backend calls the
``listener``'s ``on_event`` for every event appended by *any* process sharing
the store (this one included), in ascending ``seq`` order, exactly once.  When
it can't guarantee that (e.g. its Redis connection dropped and it could not
backfill), it calls ``on_gap()``: the hub then ends every open stream, whose
clients resume from history and lose nothing.

Size convention (``max_bytes`` of :meth:`Backend.read`): an event's size is
:func:`event_size`, the UTF-8 byte length of its ``data`` plus that of its
``event`` type (0 when ``None``); topic, ``id`` and framing are not counted.

Gap convention: each topic has a trim mark, the highest ``seq`` retention
removed from it; ``gap`` is true when a named topic's mark is above the
cursor.  A topic with no events left is forgotten entirely (no per-topic state
survives); the store then raises one store-wide mark, ``forgotten_through``,
to that topic's trim mark.  A topic with no state (never seen, or forgotten)
reports a gap for any cursor below ``forgotten_through``, and a topic created
(again) starts with its trim mark at ``forgotten_through``.  So a reader never
silently misses an event retention removed; the price is a possible extra
reset for a cursor older than the newest forgotten event.

Idempotency convention: :meth:`Backend.append` with an ``idempotency_key``
stores at most one event per key within the store's idempotency window
(:data:`._idempotency.IDEMPOTENCY_WINDOW`, 24 h, unless a store documents a
tighter bound); see :mod:`._idempotency`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .._types import ReadResult, Retention, StoredEvent

__all__ = ["Backend", "LiveListener", "event_size"]


def event_size(data: str, event: str | None) -> int:
    """The size that ``max_bytes`` counts: UTF-8 bytes of ``data`` plus those of ``event``.

    A lone surrogate (which can't be UTF-8) counts as 3 bytes, as it would in
    the store's own encoding.
    """
    size = len(data.encode("utf-8", "surrogatepass"))
    if event:
        size += len(event.encode("utf-8", "surrogatepass"))
    return size


class LiveListener(Protocol):
    """What a backend tells the hub about live events."""

    def on_event(self, event: StoredEvent) -> None:
        """A new event, in ``seq`` order.  Must not block or raise."""

    def on_gap(self) -> None:
        """The live feed may have missed events; every stream must resume from history."""


class Backend(Protocol):
    """A history store shared by one or many hub processes."""

    #: Identifies this store's ``seq`` space; changes when the store is wiped,
    #: so that cursors from an older store are recognised and reset.
    epoch: str
    retention: Retention

    @property
    def feed_connected(self) -> bool:
        """Whether the live feed reaches this process now.

        Always true for the memory store (the feed is a call inside
        ``append``); for SQLite, whether the feed's last read of the file
        succeeded; for Redis, whether the follower's last round trip
        succeeded.  ``/healthz`` reports ``degraded`` while it is false.
        """

    async def start(self, listener: LiveListener) -> None:
        """Open the store and begin the live feed to ``listener``."""

    async def aclose(self) -> None:
        """Stop the live feed and release the store.  Idempotent."""

    async def append(
        self,
        topic: str,
        data: str,
        event: str | None = None,
        *,
        idempotency_key: str | None = None,
        private: bool = False,
    ) -> StoredEvent:
        """Store one event and return it with its ``seq``.

        ``private`` is kept with the event and comes back on every read and
        through the live feed (``StoredEvent.private``); the hub filters on it.

        The event reaches ``listener.on_event`` through the live feed (for the
        memory store before this returns; for SQLite before this returns unless
        another process appended in between).  Raises
        :class:`~ssehub.errors.BackendUnavailableError` if the store can't be
        reached.  When the store refused or could not be reached, nothing was
        stored; after a timeout on a networked store
        (:class:`~ssehub.errors.StoreTimeoutError`) the event may have been
        stored once (it then reaches subscribers like any other).

        With an ``idempotency_key`` already used within the idempotency window
        for the same ``topic``, ``data`` and ``event``, nothing is stored and
        the first event is returned again (same ``seq`` and ``time``, with
        ``replayed=True``; the live feed does not deliver it again).  The same
        key with anything else raises
        :class:`~ssehub.errors.IdempotencyConflictError`; a malformed key
        :class:`~ssehub.errors.InvalidIdempotencyKeyError`.
        """

    async def read(
        self, topics: Sequence[str], after: int, limit: int, max_bytes: int | None = None
    ) -> ReadResult:
        """Events of ``topics`` with ``seq > after``, oldest first, at most ``limit``.

        With ``max_bytes``, the events returned total at most ``max_bytes``
        (counted by :func:`event_size`), except that the first event is always
        returned, however large.  ``more`` is true when ``limit`` or
        ``max_bytes`` left events out.  The store holds at most about
        ``max_bytes`` plus one event of the result in this process at a time.
        """

    async def head(self) -> int:
        """The highest ``seq`` minted so far (0 for an empty store)."""

    async def prune(self, now: float) -> int:
        """Apply the retention bounds at time ``now``; return how many events were removed."""
