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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .._types import ReadResult, Retention, StoredEvent

__all__ = ["Backend", "LiveListener"]


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

        Always true for the in-process stores (memory, SQLite: the feed is a
        call inside ``append``); for Redis, whether the follower's last round
        trip succeeded.  ``/healthz`` reports ``degraded`` while it is false.
        """

    async def start(self, listener: LiveListener) -> None:
        """Open the store and begin the live feed to ``listener``."""

    async def aclose(self) -> None:
        """Stop the live feed and release the store.  Idempotent."""

    async def append(self, topic: str, data: str, event: str | None = None) -> StoredEvent:
        """Store one event and return it with its ``seq``.

        The event reaches ``listener.on_event`` through the live feed (for the
        in-process backends before this returns).  Raises
        :class:`~ssehub.errors.BackendUnavailableError` if the store can't be
        reached.  When the store refused or could not be reached, nothing was
        stored; after a timeout on a networked store the event may have been
        stored once (it then reaches subscribers like any other).
        """

    async def read(self, topics: Sequence[str], after: int, limit: int) -> ReadResult:
        """Events of ``topics`` with ``seq > after``, oldest first, at most ``limit``."""

    async def head(self) -> int:
        """The highest ``seq`` minted so far (0 for an empty store)."""

    async def prune(self, now: float) -> int:
        """Apply the retention bounds at time ``now``; return how many events were removed."""
