"""The in-memory backend: for tests and throwaway hubs; nothing survives a restart.

Conventions:

* ``seq`` is minted by this store object (one process holds it), and a fresh
  store gets a fresh random epoch, so cursors from before a restart are reset.
* Retention is applied on every append (count) and by :meth:`prune` (age).
* A topic whose last event retention removed is forgotten: its entry leaves
  the topic dict, so no per-topic state outlives a topic's events.  Gaps stay
  exact through ``forgotten_through`` (the gap convention of :mod:`._base`).
* Reads count bytes as :func:`._base.event_size`; they merge the topics'
  deques lazily, so a read touches only the events it returns plus one.
* Quotas (:mod:`._quota`): ``max_topics`` counts the topic dict,
  ``max_bytes`` a running sum of the events held, both checked before ``seq``
  is minted.
* Idempotency keys (:mod:`._idempotency`) are remembered for 24 h and at most
  ``max_idempotency_keys`` at once (oldest forgotten first); a record is a
  key, a fingerprint, ``seq`` and ``time``, a few hundred bytes.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence

from .._types import ReadResult, Retention, StoredEvent
from ._base import LiveListener, event_size
from ._idempotency import IDEMPOTENCY_WINDOW, fingerprint, replay, validate_idempotency_key
from ._quota import bytes_refusal, topics_refusal

__all__ = ["MemoryBackend"]


class _TopicLog:
    __slots__ = ("events", "seqs", "trimmed_through")

    def __init__(self, trimmed_through: int) -> None:
        self.events: deque[StoredEvent] = deque()
        self.seqs: deque[int] = deque()
        #: Highest seq removed from this topic by retention, or the store's
        #: ``forgotten_through`` when the topic was created.
        self.trimmed_through = trimmed_through

    def trim_front(self) -> int:
        """Drop the oldest event; return its size (:func:`._base.event_size`)."""
        self.trimmed_through = self.seqs.popleft()
        oldest = self.events.popleft()
        return event_size(oldest.data, oldest.event)

    def oldest_size(self, count: int) -> int:
        """The size of the ``count`` oldest events."""
        oldest = itertools.islice(self.events, max(count, 0))
        return sum(event_size(e.data, e.event) for e in oldest)

    def after(self, seq: int) -> Iterator[StoredEvent]:
        events = self.events
        for index in range(bisect.bisect_right(self.seqs, seq), len(events)):
            yield events[index]


class _KeyRecord:
    __slots__ = ("fingerprint", "seq", "time")

    def __init__(self, fingerprint: str, seq: int, time: float) -> None:
        self.fingerprint = fingerprint
        self.seq = seq
        self.time = time


class MemoryBackend:
    """History in a dict of per-topic deques."""

    def __init__(
        self,
        *,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
        max_idempotency_keys: int = 100_000,
    ) -> None:
        self.retention = retention or Retention()
        self.epoch = secrets.token_hex(4)
        self._clock = clock
        self._seq = 0
        self._topics: dict[str, _TopicLog] = {}
        #: The bytes of every event held (:func:`._base.event_size`), for ``max_bytes``.
        self._bytes = 0
        #: The highest trim mark of any forgotten topic (see the module docstring).
        self._forgotten_through = 0
        self._keys: OrderedDict[str, _KeyRecord] = OrderedDict()
        self._max_keys = max_idempotency_keys
        self._listener: LiveListener | None = None

    @property
    def feed_connected(self) -> bool:
        """The live feed is a call inside ``append``: it can't be disconnected."""
        return True

    async def start(self, listener: LiveListener) -> None:
        self._listener = listener

    async def aclose(self) -> None:
        self._listener = None

    async def append(
        self,
        topic: str,
        data: str,
        event: str | None = None,
        *,
        idempotency_key: str | None = None,
        private: bool = False,
    ) -> StoredEvent:
        now = self._clock()
        record_print: str | None = None
        if idempotency_key is not None:
            validate_idempotency_key(idempotency_key)
            self._forget_keys(now)
            record = self._keys.get(idempotency_key)
            if record is not None:
                return replay(
                    idempotency_key,
                    record.fingerprint,
                    record.seq,
                    record.time,
                    topic,
                    data,
                    event,
                    private,
                )
            record_print = fingerprint(topic, data, event, private)
        size = event_size(data, event)
        log = self._topics.get(topic)
        self._check_quotas(log, size)
        self._seq += 1
        stored = StoredEvent(self._seq, topic, data, event, now, private)
        if log is None:
            log = self._topics[topic] = _TopicLog(self._forgotten_through)
        log.events.append(stored)
        log.seqs.append(stored.seq)
        self._bytes += size
        limit = self.retention.max_events
        while limit is not None and len(log.events) > limit:
            self._bytes -= log.trim_front()
        if not log.events:
            self._forget(topic, log)
        if idempotency_key is not None and record_print is not None:
            self._keys[idempotency_key] = _KeyRecord(record_print, stored.seq, now)
            while len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)
        if self._listener is not None:
            self._listener.on_event(stored)
        return stored

    async def read(
        self, topics: Sequence[str], after: int, limit: int, max_bytes: int | None = None
    ) -> ReadResult:
        logs: list[_TopicLog] = []
        gap = False
        for topic in dict.fromkeys(topics):
            log = self._topics.get(topic)
            if log is None:
                gap = gap or self._forgotten_through > after
                continue
            gap = gap or log.trimmed_through > after
            logs.append(log)
        found: list[StoredEvent] = []
        size = 0
        more = False
        for stored in heapq.merge(*(log.after(after) for log in logs), key=lambda e: e.seq):
            if len(found) >= limit:
                more = True
                break
            if max_bytes is not None:
                size += event_size(stored.data, stored.event)
                if found and size > max_bytes:
                    more = True
                    break
            found.append(stored)
        return ReadResult(found, gap=gap, more=more)

    async def head(self) -> int:
        return self._seq

    async def prune(self, now: float) -> int:
        self._forget_keys(now)
        max_age = self.retention.max_age
        if max_age is None:
            return 0
        cutoff = now - max_age
        removed = 0
        emptied: list[tuple[str, _TopicLog]] = []
        for topic, log in self._topics.items():
            while log.events and log.events[0].time < cutoff:
                self._bytes -= log.trim_front()
                removed += 1
            if not log.events:
                emptied.append((topic, log))
        for topic, log in emptied:
            self._forget(topic, log)
        return removed

    def _check_quotas(self, log: _TopicLog | None, size: int) -> None:
        """Raise QuotaExceededError if appending ``size`` bytes to ``log`` breaks a quota."""
        retention = self.retention
        refusal = topics_refusal(retention, new_topic=log is None, topics=len(self._topics))
        if refusal is None and retention.max_bytes is not None:
            stored_after = self._bytes + size
            if stored_after > retention.max_bytes and log is not None:
                limit = retention.max_events
                if limit is not None:
                    stored_after -= log.oldest_size(len(log.events) + 1 - limit)
            refusal = bytes_refusal(retention, stored_after=stored_after)
        if refusal is not None:
            raise refusal

    def _forget(self, topic: str, log: _TopicLog) -> None:
        """Drop an emptied topic's state, keeping its trim mark in ``forgotten_through``."""
        del self._topics[topic]
        self._forgotten_through = max(self._forgotten_through, log.trimmed_through)

    def _forget_keys(self, now: float) -> None:
        """Drop idempotency records older than the window (they are kept in time order)."""
        cutoff = now - IDEMPOTENCY_WINDOW
        keys = self._keys
        while keys and next(iter(keys.values())).time < cutoff:
            keys.popitem(last=False)
