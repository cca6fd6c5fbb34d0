"""The storage seam of durable streams: one small interface, three stores.

A store keeps, per stream name, a :class:`~._model.StreamMeta` with a
``version``, and per stream *id* its records.  Every decision is taken in
Python (:mod:`._service`) on a loaded metadata and written with
:meth:`DurableStore.commit`, which applies a list of :class:`Change` at once
*only if* every touched stream still has the version the decision was based
on (compare-and-set; the caller retries on ``False``).  So producer checks,
``Stream-Seq`` ordering, closure and fork reference counts are atomic on
every store: memory (one event loop), SQLite (one ``BEGIN IMMEDIATE``
transaction) and Redis (one Lua script), whichever process or node decides.

Live readers wait on the store's :class:`Notifier`: a store calls
:meth:`Notifier.notify` after its own commits and when another process or
node says it committed (SQLite: the hub's wake-up datagrams; Redis: a
pub/sub channel).  A wake-up carries no data: the reader reloads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ._model import Record, StreamMeta

__all__ = ["Change", "DurableStore", "Notifier", "read_step"]

#: Most records fetched by one step of a read.
MAX_STEP = 64


def read_step(max_bytes: int, size: int, largest: int) -> int:
    """How many records to fetch next: as many as fit the bytes left, judged by the largest
    record seen so far (one at first), so a read holds about ``max_bytes`` plus one record."""
    if largest == 0:
        return 1
    return max(1, min(MAX_STEP, (max_bytes - size) // largest))


@dataclass(slots=True)
class Change:
    """One stream's part of an atomic commit.

    ``expected`` is the version the decision saw (0: the name was free).
    ``meta`` is the new metadata (its version is set by the store), or
    ``None`` to remove the name.  ``copy`` = ``(source id, up to)`` copies the
    source's records ending at or before ``up to`` into ``meta.id`` (forks),
    before ``records`` are appended.  ``drop`` removes every record of that id.
    """

    name: str
    expected: int
    meta: StreamMeta | None
    records: Sequence[Record] = ()
    copy: tuple[str, int] | None = None
    drop: str | None = None
    #: Remove records of ``meta.id`` ending at or before this position (retention).
    trim_to: int | None = None


class DurableStore(Protocol):
    """Where durable streams live (see the module docstring)."""

    notifier: Notifier

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def load(self, name: str) -> StreamMeta | None:
        """The stream's metadata, expired or not; ``None`` if the name is free."""
        ...

    async def commit(self, changes: Sequence[Change]) -> bool:
        """Apply ``changes`` atomically if every ``expected`` version still holds."""
        ...

    async def read(self, stream_id: str, after: int, max_bytes: int) -> list[Record]:
        """Records ending after ``after``, in order, about ``max_bytes`` at most (≥ 1 record)."""
        ...

    async def touch(self, name: str, accessed: float) -> None:
        """Record a read or write for the sliding TTL (no version change)."""
        ...

    async def names_with_expiry(self) -> list[str]:
        """Names of the streams with a TTL or an expiry time (for the sweep)."""
        ...


@dataclass
class Notifier:
    """In-process wake-ups for live readers, by stream name."""

    _events: dict[str, asyncio.Event] = field(default_factory=dict)

    def watch(self, name: str) -> asyncio.Event:
        """An event set at the stream's next change (take it *before* reloading)."""
        event = self._events.get(name)
        if event is None:
            event = self._events[name] = asyncio.Event()
        return event

    def notify(self, name: str) -> None:
        event = self._events.pop(name, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        events, self._events = self._events, {}
        for event in events.values():
            event.set()
