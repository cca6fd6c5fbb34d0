"""The hub: publish to topics, stream them to subscribers with exact resume.

The flow of one event (see ARCHITECTURE.md):

1. :meth:`Hub.publish` validates and calls ``backend.append``; the store mints
   the event's ``seq``.
2. The backend's live feed calls :meth:`Hub.on_event` once per event, in
   ``seq`` order, on every hub process sharing the store.
3. ``on_event`` encodes the event **once** (``id: {epoch}-{seq}``) and pushes the
   same ``bytes`` into the bounded queue of every subscription to its topic.
4. Each stream's writer (``ssehub.server``) sends everything queued in one write.

A subscription starts with :meth:`Hub.open`: it is registered first (live
events are held), then the cursor is checked (``_cursor.check_cursor``), history
after it is replayed in batches read on demand (so replay is paced by the
client), and finally the held live events above the replayed ``seq`` are
released.  Time comes from injected clocks; :meth:`Hub.tick` does the periodic
work (heartbeats, write deadlines) and tests call it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from ..errors import HubError
from ..protocol import ServerSentEvent, encode
from ._cursor import RESET_EVENT, CursorOutcome, check_cursor, format_cursor
from ._subscription import Subscription
from ._topics import validate_event_type, validate_topic
from ._types import StoredEvent
from .backends import Backend

__all__ = ["HEARTBEAT", "Hub", "HubClosingError", "HubConfig", "HubStats", "Published", "Stream"]

logger = logging.getLogger("ssehub.hub")

#: The heartbeat chunk: a comment line and a blank line; it dispatches nothing.
HEARTBEAT = b":\n\n"


class HubClosingError(HubError):
    """The hub is shutting down and takes no new subscriptions."""


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Tuning of a hub.  Durations are float seconds; ``retry`` values are milliseconds."""

    #: A comment is sent on a stream idle for this long (``0``: never).
    heartbeat_interval: float = 15.0
    #: The ``retry:`` sent when a stream opens (browser reconnection delay, ms).
    retry: int = 3000
    #: Bound of one subscriber's queue: events, and bytes.
    max_queue_events: int = 1000
    max_queue_bytes: int = 4 * 1024 * 1024
    #: A write blocked for longer than this is abandoned and the stream closed.
    write_timeout: float = 30.0
    #: Live events that arrive within this long of the previous delivery are
    #: coalesced into one write per subscriber (float seconds; ``0``: every
    #: event is written at once).  The first event after a quiet spell always
    #: goes out at once, so this only adds latency under load.
    flush_interval: float = 0.01
    #: Events read from history per step of a replay.
    replay_batch: int = 500
    #: How often age retention is applied.
    prune_interval: float = 60.0
    #: On shutdown each stream gets ``retry:`` drawn uniformly from this range (ms),
    #: so clients come back spread out instead of all at once.
    shutdown_retry_min: int = 1000
    shutdown_retry_max: int = 10_000


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
    per_topic_published: dict[str, int] = field(default_factory=dict)
    per_topic_delivered: dict[str, int] = field(default_factory=dict)

    #: At most this many topics are tracked per table (the busiest stay).
    MAX_TRACKED_TOPICS = 1000

    def count_topic(self, table: dict[str, int], topic: str, n: int) -> None:
        if topic not in table and len(table) >= self.MAX_TRACKED_TOPICS:
            table.pop(min(table, key=table.__getitem__))
        table[topic] = table.get(topic, 0) + n


@dataclass(frozen=True, slots=True)
class Published:
    """What a publish returns: the event's cursor ``id`` and its ``topic``."""

    id: str
    topic: str
    seq: int
    #: True when an idempotency key was repeated: nothing new was stored.
    replayed: bool = False


class Stream:
    """One open subscription's chunks, ready to be written by a server."""

    def __init__(
        self, hub: Hub, sub: Subscription, start: bytes, replay: Callable[[], AsyncIterator[bytes]]
    ) -> None:
        self.hub = hub
        self.subscription = sub
        #: The opening write: ``retry`` with the cursor, or the reset event.
        self.start = start
        self._replay = replay

    def replay(self) -> AsyncIterator[bytes]:
        """History after the cursor, one write per batch; then the subscription is live.

        A server writes :attr:`start`, then this, then ``subscription.next_batch()``
        until it returns ``None`` (what :meth:`chunks` does in one generator).
        """
        return self._replay()

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The stream's writes: the opening chunk, the replay, then live batches."""
        yield self.start
        async for chunk in self._replay():
            yield chunk
        sub = self.subscription
        while True:
            batch = await sub.next_batch()
            if batch is None:
                return
            yield batch

    def close(self) -> None:
        """Unregister the subscription (idempotent); call when the writer ends."""
        self.hub._unregister(self.subscription)


class Hub:
    """Topics, subscriptions and the live fan-out, over one :class:`Backend`."""

    def __init__(
        self,
        backend: Backend,
        config: HubConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.config = config or HubConfig()
        self.clock = clock
        self.stats = HubStats()
        self._rng = rng or random.Random()
        self._by_topic: dict[str, set[Subscription]] = {}
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        self._observers: list[Callable[[StoredEvent, int], None]] = []
        self._dirty: set[Subscription] = set()
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush = float("-inf")

    # -- life cycle ----------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        """Open the backend and (unless ``background=False``) start the ticker."""
        await self.backend.start(self)
        if background:
            self._task = asyncio.create_task(self._run_periodic(), name="ssehub-hub-ticker")

    async def aclose(self) -> None:
        """End every stream now and close the backend."""
        self.closing = True
        for sub in list(self._subscriptions):
            sub.close("shutdown")
        if self._task is not None:
            # Cancel until it is done: on Python 3.11 a cancellation can be swallowed by
            # asyncio.wait_for inside a backend call (CPython gh-86296).
            while not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({self._task}, timeout=1.0)
            self._task = None
        await self.backend.aclose()

    def drain(self) -> int:
        """Begin a graceful shutdown; return how many streams were told to go.

        Every open stream gets a ``retry:`` drawn from the configured range and
        ends; new subscriptions are refused with :class:`HubClosingError`.
        """
        self.closing = True
        low, high = self.config.shutdown_retry_min, self.config.shutdown_retry_max
        subs = list(self._subscriptions)
        for sub in subs:
            sub.push_control(encode(ServerSentEvent(retry=self._rng.randint(low, high))))
            sub.close("shutdown")
        return len(subs)

    async def _run_periodic(self) -> None:
        interval = self.config.heartbeat_interval
        step = min(1.0, interval / 2) if interval > 0 else 1.0
        next_prune = self.clock() + self.config.prune_interval
        while True:
            await asyncio.sleep(step)
            now = self.clock()
            self.tick(now)
            if now >= next_prune:
                next_prune = now + self.config.prune_interval
                try:
                    removed = await self.backend.prune(time.time())
                except HubError as exc:
                    logger.warning("retention prune failed: %s", exc)
                else:
                    if removed:
                        logger.debug("retention removed %d events", removed)

    def tick(self, now: float) -> None:
        """Periodic work at clock time ``now``: heartbeats and write deadlines."""
        interval = self.config.heartbeat_interval
        deadline = self.config.write_timeout
        for sub in self._subscriptions:
            started = sub.send_started
            if started is not None and now - started > deadline:
                self.stats.write_timeouts += 1
                logger.info(
                    "a write to a subscriber of %s blocked %.0f s; closing",
                    sub.topics,
                    now - started,
                )
                sub.close("write-timeout")
                sub.abort_pending_write()
            elif interval > 0 and started is None and now - sub.last_write >= interval:
                sub.push_control(HEARTBEAT)
                sub.last_write = now

    # -- publishing ----------------------------------------------------------

    async def publish(
        self,
        topic: str,
        data: str,
        event: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Published:
        """Store one event on ``topic`` and return its cursor.

        With ``idempotency_key``, a repeat of the same publish within the
        store's idempotency window (24 h) stores nothing and returns the first
        cursor again (``replayed=True``); see :meth:`Backend.append`.

        Raises :class:`~ssehub.errors.InvalidTopicError` or
        :class:`~ssehub.errors.EncodeError` for bad names and
        :class:`~ssehub.errors.InvalidIdempotencyKeyError` for a bad key
        (nothing is stored), :class:`~ssehub.errors.IdempotencyConflictError`
        for a key used by another event,
        :class:`~ssehub.errors.BackendUnavailableError` if the store is down
        (:class:`~ssehub.errors.StoreTimeoutError`: outcome unknown, retry
        with the same key).
        """
        validate_topic(topic)
        event = validate_event_type(event)
        stored = await self.backend.append(topic, data, event, idempotency_key=idempotency_key)
        cursor = format_cursor(self.backend.epoch, stored.seq)
        return Published(cursor, topic, stored.seq, replayed=stored.replayed)

    def add_observer(self, observer: Callable[[StoredEvent, int], None]) -> None:
        """Call ``observer(event, deliveries)`` for every live event (metrics, dashboards)."""
        self._observers.append(observer)

    def remove_observer(self, observer: Callable[[StoredEvent, int], None]) -> None:
        """Stop calling ``observer`` (no error if it was not added)."""
        with contextlib.suppress(ValueError):
            self._observers.remove(observer)

    def encode_stored(self, stored: StoredEvent) -> bytes:
        """The wire chunk of a stored event: ``id``, optional ``event``, ``data``."""
        return encode(
            ServerSentEvent(
                data=stored.data,
                event=stored.event,
                id=format_cursor(self.backend.epoch, stored.seq),
            )
        )

    # LiveListener
    def on_event(self, event: StoredEvent) -> None:
        """Fan a live event out to its topic's subscribers (encoded once)."""
        stats = self.stats
        stats.published += 1
        stats.count_topic(stats.per_topic_published, event.topic, 1)
        subs = self._by_topic.get(event.topic)
        delivered = 0
        if subs:
            chunk = self.encode_stored(event)
            seq = event.seq
            for sub in subs:
                sub.push(seq, chunk, wake=False)
            self._dirty.update(subs)
            self._schedule_flush()
            delivered = len(subs)
            stats.delivered += delivered
            stats.count_topic(stats.per_topic_delivered, event.topic, delivered)
        for observer in self._observers:
            observer(event, delivered)

    def _schedule_flush(self) -> None:
        """Wake the writers of the queued events: at once, or at most once per interval."""
        if self._flush_handle is not None:
            return  # a flush is already due; these events ride along
        loop = asyncio.get_running_loop()
        due = self._last_flush + self.config.flush_interval
        if due <= loop.time():
            self._flush_handle = loop.call_soon(self._flush)
        else:
            self._flush_handle = loop.call_at(due, self._flush)

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_flush = loop.time()
        dirty, self._dirty = self._dirty, set()
        for sub in dirty:
            sub.wake()
        # The woken writers run in the next loop iteration, in wake order; this
        # callback runs right after the last of them, so the interval is counted
        # from the end of the writes: the time in between stays free for
        # publishers, new subscribers and everything else.
        self._flush_handle = loop.call_soon(self._flush_done)

    def _flush_done(self) -> None:
        self._flush_handle = None
        self._last_flush = asyncio.get_running_loop().time()
        if self._dirty:
            self._schedule_flush()

    def on_gap(self) -> None:
        """The live feed may have missed events: every client resumes from history."""
        logger.warning("live feed gap: closing %d streams so they resume", len(self._subscriptions))
        for sub in list(self._subscriptions):
            sub.close("gap")

    # -- subscribing ---------------------------------------------------------

    @property
    def open_streams(self) -> int:
        return len(self._subscriptions)

    def topic_subscribers(self) -> dict[str, int]:
        """How many streams listen to each topic right now."""
        return {topic: len(subs) for topic, subs in self._by_topic.items()}

    async def open(self, topics: Sequence[str], last_event_id: str | None = None) -> Stream:
        """Open a subscription to ``topics``, resuming after ``last_event_id`` if given.

        Raises :class:`~ssehub.errors.InvalidTopicError` for a bad topic and
        :class:`HubClosingError` while the hub drains.
        """
        if self.closing:
            raise HubClosingError("the hub is shutting down")
        names = tuple(dict.fromkeys(validate_topic(t) for t in topics))
        if not names:
            raise HubError("subscribe to at least one topic")
        config = self.config
        sub = Subscription(
            names,
            max_events=config.max_queue_events,
            max_bytes=config.max_queue_bytes,
            now=self.clock(),
            on_close=self._closed,
        )
        self._register(sub)
        try:
            head = await self.backend.head()
        except BaseException:
            self._unregister(sub)
            raise
        check = check_cursor(last_event_id, epoch=self.backend.epoch, head=head)
        self.stats.opened += 1
        epoch, retry = self.backend.epoch, config.retry
        if check.outcome is CursorOutcome.RESUME:
            # Repeat the client's own cursor with the retry: one control block.
            start = encode(ServerSentEvent(id=format_cursor(epoch, check.after), retry=retry))
            return Stream(self, sub, start, lambda: self._replay(sub, check.after, head))
        if check.outcome is CursorOutcome.RESET:
            start = self._reset_chunk(check.reason, last_event_id, head, retry=retry)
        else:
            start = encode(ServerSentEvent(id=format_cursor(epoch, head), retry=retry))
        sub.go_live(head)
        return Stream(self, sub, start, _no_replay)

    def _reset_chunk(
        self, reason: str, last_event_id: str | None, head: int, retry: int | None = None
    ) -> bytes:
        """The reserved reset event: ``data`` names the reason and the refused cursor."""
        self.stats.resets += 1
        payload = {"reason": reason, "last_event_id": last_event_id}
        return encode(
            ServerSentEvent(
                data=json.dumps(payload),
                event=RESET_EVENT,
                id=format_cursor(self.backend.epoch, head),
                retry=retry,
            )
        )

    async def _replay(self, sub: Subscription, after: int, head: int) -> AsyncIterator[bytes]:
        """History after ``after``, in batches, then switch ``sub`` to live events."""
        first = True
        while not sub.closed:
            result = await self.backend.read(sub.topics, after, self.config.replay_batch)
            if first and result.gap:
                sub.go_live(head)
                yield self._reset_chunk(
                    "history-gap", format_cursor(self.backend.epoch, after), head
                )
                return
            first = False
            if result.events:
                after = result.events[-1].seq
                self.stats.replayed += len(result.events)
                yield b"".join(self.encode_stored(e) for e in result.events)
            if not result.more:
                break
        sub.go_live(after)

    def _closed(self, sub: Subscription) -> None:
        if sub.close_reason == "slow":
            self.stats.slow_closes += 1
            logger.info("closed a slow subscriber of %s; it resumes from history", sub.topics)

    def _register(self, sub: Subscription) -> None:
        self._subscriptions.add(sub)
        for topic in sub.topics:
            self._by_topic.setdefault(topic, set()).add(sub)

    def _unregister(self, sub: Subscription) -> None:
        if sub not in self._subscriptions:
            return
        self._subscriptions.discard(sub)
        for topic in sub.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[topic]


async def _no_replay() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover  (makes this an async generator)
