"""The in-memory backend: for tests and throwaway hubs; nothing survives a restart.

``seq`` is minted by this store object (one process holds it), and a fresh
store gets a fresh random epoch, so cursors from before a restart are reset.
Retention is applied on every append (count) and by :meth:`prune` (age).
"""

from __future__ import annotations

import bisect
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence

from .._types import ReadResult, Retention, StoredEvent
from ._base import LiveListener

__all__ = ["MemoryBackend"]


class _TopicLog:
    __slots__ = ("events", "seqs", "trimmed_through")

    def __init__(self) -> None:
        self.events: deque[StoredEvent] = deque()
        self.seqs: deque[int] = deque()
        #: Highest seq removed from this topic by retention (0: none).
        self.trimmed_through = 0

    def trim_front(self) -> None:
        self.trimmed_through = self.seqs.popleft()
        self.events.popleft()


class MemoryBackend:
    """History in a dict of per-topic deques."""

    def __init__(
        self, *, retention: Retention | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.retention = retention or Retention()
        self.epoch = secrets.token_hex(4)
        self._clock = clock
        self._seq = 0
        self._topics: dict[str, _TopicLog] = {}
        self._listener: LiveListener | None = None

    @property
    def feed_connected(self) -> bool:
        """The live feed is a call inside ``append``: it can't be disconnected."""
        return True

    async def start(self, listener: LiveListener) -> None:
        self._listener = listener

    async def aclose(self) -> None:
        self._listener = None

    async def append(self, topic: str, data: str, event: str | None = None) -> StoredEvent:
        self._seq += 1
        stored = StoredEvent(self._seq, topic, data, event, self._clock())
        log = self._topics.get(topic)
        if log is None:
            log = self._topics[topic] = _TopicLog()
        log.events.append(stored)
        log.seqs.append(stored.seq)
        limit = self.retention.max_events
        while limit is not None and len(log.events) > limit:
            log.trim_front()
        if self._listener is not None:
            self._listener.on_event(stored)
        return stored

    async def read(self, topics: Sequence[str], after: int, limit: int) -> ReadResult:
        found: list[StoredEvent] = []
        gap = False
        for topic in dict.fromkeys(topics):
            log = self._topics.get(topic)
            if log is None:
                continue
            if log.trimmed_through > after:
                gap = True
            start = bisect.bisect_right(log.seqs, after)
            for index in range(start, min(len(log.events), start + limit + 1)):
                found.append(log.events[index])
        found.sort(key=lambda e: e.seq)
        more = len(found) > limit
        return ReadResult(found[:limit], gap=gap, more=more)

    async def head(self) -> int:
        return self._seq

    async def prune(self, now: float) -> int:
        max_age = self.retention.max_age
        if max_age is None:
            return 0
        cutoff = now - max_age
        removed = 0
        for log in self._topics.values():
            while log.events and log.events[0].time < cutoff:
                log.trim_front()
                removed += 1
        return removed
