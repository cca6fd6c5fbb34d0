"""The hub: publish to topics, stream them to subscribers with exact resume.

The flow of one event (see ARCHITECTURE.md):

1. :meth:`Hub.publish` validates and calls ``backend.append``; the store mints
   the event's ``seq``.
2. The backend's live feed calls :meth:`Hub.on_event` once per event, in
   ``seq`` order, on every hub process sharing the store.
3. ``on_event`` encodes the event **once** (``id: {epoch}-{seq}``) and pushes the
   same ``bytes`` into the bounded queue of every subscription to its topic
   (a *tagged* stream, ``?tag=topic``, gets them behind one ``topic: <name>``
   line, built at most once per event and only when such a stream is there).
4. Each :class:`~ssehub.hub.Stream` (``_stream.py``) writes everything queued
   in one write; the server only pumps its bytes.

A stream starts with :meth:`Hub.open`: its subscription is registered first
(live events are held), then the cursor is checked (``_cursor.check_cursor``),
history after it is replayed in steps read on demand (bounded by events and
bytes, so replay is paced by the client), and finally the held live events
above the replayed ``seq`` are released.

Time: stream deadlines and heartbeats use the injected monotonic ``clock``;
age retention uses the injected ``wall_clock`` (seconds since the epoch, as
the store stamps events); the flush of coalesced live events uses the event
loop's own timer.  :meth:`Hub.tick` does the periodic work and tests call it
directly with a fake clock.

No stored row can break a stream: a row that cannot be encoded (written by an
older version or by hand) is skipped with a log line and counted in
``HubStats.skipped``, both live and on replay.

Nothing outside the hub talks to its backend: servers and demos use the verbs
:attr:`Hub.epoch`, :meth:`Hub.head`, :meth:`Hub.read`, :attr:`Hub.feed_connected`
and :meth:`Hub.format_cursor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import (
    EncodeError,
    HubClosingError,
    HubError,
    InvalidEventError,
    InvalidTopicError,
    OversizedEventError,
)
from ..protocol import ServerSentEvent, encode
from ._access import NO_GRANT, TopicGrant
from ._cursor import RESET_EVENT, CursorCheck, CursorOutcome, check_cursor, format_cursor
from ._rewind import Rewind
from ._stream import Stream
from ._subscription import Accept, Subscription
from ._topics import validate_event_type, validate_topic
from ._types import ReadResult, StoredEvent
from .backends import Backend

__all__ = ["Hub", "HubConfig", "HubStats", "Published"]

logger = logging.getLogger("ssehub.hub")

#: A stream whose token expires within this many seconds is ended at the next tick
#: (ticks come at least once a second), so it never outlives its token.
TOKEN_EXPIRY_MARGIN = 1.5

#: The longest cursor a reset event echoes back (characters); longer ones are cut.
MAX_ECHOED_CURSOR = 64


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Tuning of a hub.  Durations are float seconds; ``retry`` values are milliseconds.

    Each field's ``metadata`` names its command-line option and help text
    (plain strings: the hub knows nothing of the CLI); ``ssehub serve``, its
    environment variables and its config file are derived from them.
    """

    heartbeat_interval: float = field(
        default=15.0,
        metadata={
            "flag": "--heartbeat",
            "unit": "duration",
            "help": "Send a comment on idle streams this often (0 = never).",
        },
    )
    retry: int = field(
        default=3000,
        metadata={
            "unit": "ms",
            "min": 0,
            "help": "Reconnection delay sent to clients on connect, in ms.",
        },
    )
    max_queue_events: int = field(
        default=1000,
        metadata={
            "flag": "--max-queue",
            "min": 1,
            "help": "Events queued for one slow "
            "subscriber before it is closed (it then resumes from history).",
        },
    )
    max_queue_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata={"min": 1, "help": "Bytes queued for one slow subscriber before it is closed."},
    )
    max_event_bytes: int = field(
        default=2 * 1024 * 1024,
        metadata={
            "min": 1,
            "help": "Largest event accepted, in bytes as encoded on the wire (each line of "
            "data costs a 'data: ' prefix); at most --max-queue-bytes.",
        },
    )
    write_timeout: float = field(
        default=30.0,
        metadata={"unit": "duration", "help": "Abort a stream whose write is blocked this long."},
    )
    drain_timeout: float = field(
        default=2.0,
        metadata={
            "unit": "duration",
            "help": "On SIGTERM, responses get this long to finish while new requests get "
            "503 shutting_down; streams whose final write is still blocked are then reset.",
        },
    )
    flush_interval: float = field(
        default=0.01,
        metadata={
            "unit": "duration",
            "help": "Under load, live events this close together "
            "share one write per subscriber (0 = write each at once). The first event "
            "after a quiet spell is never delayed.",
        },
    )
    replay_batch: int = field(
        default=500,
        metadata={"min": 1, "help": "Events read from history per step of a replay."},
    )
    prune_interval: float = field(
        default=60.0,
        metadata={"unit": "duration", "help": "How often age retention is applied."},
    )
    shutdown_retry_min: int = field(
        default=1000,
        metadata={
            "unit": "ms",
            "min": 0,
            "help": "On shutdown each stream gets a retry "
            "drawn from [min, max] ms, so clients come back spread out.",
        },
    )
    shutdown_retry_max: int = field(
        default=10_000,
        metadata={"unit": "ms", "min": 0, "help": "Upper end of the shutdown retry range, in ms."},
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Settings that contradict one another (empty when consistent)."""
        found: list[str] = []
        if self.max_queue_events < 1 or self.max_queue_bytes < 1 or self.max_event_bytes < 1:
            found.append("queue and event bounds must be at least 1")
        if self.max_event_bytes > self.max_queue_bytes:
            found.append(
                f"max_event_bytes ({self.max_event_bytes}) exceeds max_queue_bytes "
                f"({self.max_queue_bytes}): one such event would close every subscriber"
            )
        if self.replay_batch < 1:
            found.append("replay_batch must be at least 1")
        if min(self.write_timeout, self.drain_timeout, self.prune_interval) <= 0:
            found.append("write_timeout, drain_timeout and prune_interval must be positive")
        if self.heartbeat_interval < 0 or self.flush_interval < 0:
            found.append("heartbeat_interval and flush_interval must not be negative")
        if not 0 <= self.shutdown_retry_min <= self.shutdown_retry_max:
            found.append("shutdown_retry_min must be between 0 and shutdown_retry_max")
        return found


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


@dataclass(frozen=True, slots=True)
class Published:
    """What a publish returns: the event's cursor ``id`` and its ``topic``."""

    id: str
    topic: str
    seq: int
    #: True when an idempotency key was repeated: nothing new was stored.
    replayed: bool = False


class Hub:
    """Topics, streams and the live fan-out, over one :class:`Backend`."""

    def __init__(
        self,
        backend: Backend,
        config: HubConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.config = config or HubConfig()
        self.clock = clock
        self.wall_clock = wall_clock
        self.stats = HubStats()
        self._rng = rng or random.Random()
        self._by_topic: dict[str, set[Subscription]] = {}
        self._streams: set[Stream] = set()
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        self._observers: list[Callable[[StoredEvent, int], None]] = []
        self._dirty: set[Subscription] = set()
        self._fanning_out = False
        self._leaving: list[Subscription] = []
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush = float("-inf")
        self._adapter_topics: dict[str, Callable[[StoredEvent], bytes]] = {}
        self._flush_began = float("-inf")

    # -- life cycle ----------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        """Open the backend and (unless ``background=False``) start the ticker."""
        await self.backend.start(self)
        if background:
            self._task = asyncio.create_task(self._run_periodic(), name="ssehub-hub-ticker")

    async def aclose(self) -> None:
        """End every stream now and close the backend."""
        self.closing = True
        for stream in list(self._streams):
            stream.close("shutdown")
        if self._task is not None:
            # Cancel until it is done: on Python 3.11 a cancellation can be swallowed by
            # asyncio.wait_for inside a backend call (CPython gh-86296).
            while not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({self._task}, timeout=1.0)
            self._task = None
        await self.backend.aclose()

    def _expire(self, stream: Stream) -> None:
        """End a stream whose token expires: a jittered ``retry:`` spreads the reconnects."""
        low = self.config.retry // 2
        retry = self._rng.randint(low, max(low, self.config.retry * 3 // 2))
        stream.subscription.push_control(encode(ServerSentEvent(retry=retry)))
        stream.close("token-expired")

    def drain(self) -> int:
        """Begin a graceful shutdown; return how many streams were told to go.

        Every open stream gets a ``retry:`` drawn from the configured range and
        ends; new subscriptions are refused with :class:`HubClosingError`.  A
        stream whose write stays blocked for ``drain_timeout`` is then aborted
        by :meth:`tick`.
        """
        self.closing = True
        low, high = self.config.shutdown_retry_min, self.config.shutdown_retry_max
        streams = list(self._streams)
        for stream in streams:
            stream.subscription.push_control(
                encode(ServerSentEvent(retry=self._rng.randint(low, high)))
            )
            stream.close("shutdown")
        return len(streams)

    async def _run_periodic(self) -> None:
        interval = self.config.heartbeat_interval
        step = min(1.0, interval / 2) if interval > 0 else 1.0
        step = min(step, self.config.drain_timeout / 2)
        next_prune = self.clock() + self.config.prune_interval
        loop = asyncio.get_running_loop()
        while True:
            asleep = loop.time()
            await asyncio.sleep(step)
            self.stats.loop_lag = max(0.0, loop.time() - asleep - step)
            now = self.clock()
            self.tick(now)
            if now >= next_prune:
                next_prune = now + self.config.prune_interval
                try:
                    removed = await self.backend.prune(self.wall_clock())
                except HubError as exc:
                    logger.warning("retention prune failed: %s", exc)
                else:
                    if removed:
                        logger.debug("retention removed %d events", removed)

    def tick(self, now: float) -> None:
        """Periodic work at clock time ``now``: heartbeats and write deadlines."""
        config = self.config
        deadline = config.write_timeout
        if self.closing:
            deadline = min(deadline, config.drain_timeout)
        wall = self.wall_clock()
        for stream in list(self._streams):
            expires_at = stream.expires_at
            # Within one tick of the token's exp: end now, so the stream never outlives it.
            if (
                expires_at is not None
                and not stream.closed
                and wall + TOKEN_EXPIRY_MARGIN >= expires_at
            ):
                self._expire(stream)
            if stream.tick(
                now, heartbeat_interval=config.heartbeat_interval, write_timeout=deadline
            ):
                self.stats.write_timeouts += 1
                logger.info(
                    "a write to a subscriber of %s was blocked over %.0f s; connection aborted",
                    stream.subscription.topics,
                    deadline,
                )

    # -- the store, as seen from outside the hub ------------------------------

    @property
    def epoch(self) -> str:
        """The store's epoch: the first part of every cursor this hub issues."""
        return self.backend.epoch

    @property
    def feed_connected(self) -> bool:
        """Whether the store's live feed is connected (always, for in-process stores)."""
        return self.backend.feed_connected

    async def head(self) -> int:
        """The highest ``seq`` the store minted so far (0 when empty).

        Raises :class:`~ssehub.errors.BackendUnavailableError` if the store is down.
        """
        return await self.backend.head()

    async def read(
        self, topics: Sequence[str], after: int, limit: int, max_bytes: int | None = None
    ) -> ReadResult:
        """Stored events of ``topics`` with ``seq > after``, oldest first.

        At most ``limit`` events and (when given) about ``max_bytes`` bytes of them.
        """
        return await self.backend.read(topics, after, limit, max_bytes=max_bytes)

    def format_cursor(self, seq: int) -> str:
        """The cursor (``Last-Event-ID``) just after event ``seq`` of this store."""
        return format_cursor(self.backend.epoch, seq)

    # -- publishing ----------------------------------------------------------

    async def publish(
        self,
        topic: str,
        data: str,
        event: str | None = None,
        *,
        idempotency_key: str | None = None,
        private: bool = False,
        adapter: bool = False,
    ) -> Published:
        """Store one event on ``topic`` and return its cursor.

        A ``private`` event reaches only streams whose ``grant`` (see
        :meth:`open`) selects its topic — live and on replay, on every store.
        ``adapter=True`` publishes on a topic reserved by :meth:`adopt_topic`
        (and only there).

        The event is encoded before anything is stored, so an event that could
        never reach a subscriber (a lone surrogate, a forged field, over
        ``max_event_bytes`` on the wire) is refused and the store is unchanged.

        With ``idempotency_key``, a repeat of the same publish within the
        store's idempotency window (24 h) stores nothing and returns the first
        cursor again (``replayed=True``); see :meth:`Backend.append`.

        Raises :class:`~ssehub.errors.InvalidTopicError`,
        :class:`~ssehub.errors.InvalidEventError` (a name or text that can't be sent),
        :class:`~ssehub.errors.OversizedEventError` or
        :class:`~ssehub.errors.InvalidIdempotencyKeyError` (nothing is stored),
        :class:`~ssehub.errors.IdempotencyConflictError` for a key used by
        another event, :class:`~ssehub.errors.BackendUnavailableError` if the
        store is down (:class:`~ssehub.errors.StoreTimeoutError`: outcome
        unknown, retry with the same key).
        """
        validate_topic(topic)
        if (topic in self._adapter_topics) != adapter:
            raise InvalidTopicError(
                f"topic {topic!r} is reserved for a protocol adapter"
                if not adapter
                else f"topic {topic!r} is no adapter's"
            )
        event = validate_event_type(event)
        self.check_event(data, event)
        stored = await self.backend.append(
            topic, data, event, idempotency_key=idempotency_key, private=private
        )
        cursor = format_cursor(self.backend.epoch, stored.seq)
        return Published(cursor, topic, stored.seq, replayed=stored.replayed)

    def check_event(self, data: str, event: str | None) -> None:
        """Raise unless ``data``/``event`` encode within ``max_event_bytes``."""
        try:
            size = len(encode(ServerSentEvent(data=data, event=event)))
        except EncodeError as exc:  # a lone surrogate: it could never be sent
            raise InvalidEventError(str(exc)) from exc
        # The id the store will mint is at most "{32-char epoch}-{19 digits}".
        size += len("id: \n") + 52
        limit = self.config.max_event_bytes
        if size > limit:
            raise OversizedEventError(
                f"the event is {size} bytes on the wire, over the limit of {limit} "
                "(every line of data costs a 'data: ' prefix)"
            )

    def add_observer(self, observer: Callable[[StoredEvent, int], None]) -> None:
        """Call ``observer(event, deliveries)`` for every live event (metrics, dashboards)."""
        self._observers.append(observer)

    def adopt_topic(self, topic: str, encode_row: Callable[[StoredEvent], bytes]) -> None:
        """Reserve ``topic`` for a protocol adapter (Mercure) that owns its wire format.

        Its events are published only with ``publish(..., adapter=True)``, are
        put on the wire by ``encode_row`` (encoded once per event, as usual;
        it may raise :class:`~ssehub.errors.EncodeError`), and are streamed
        only to subscriptions opened with an ``accept`` test, which decides
        alone which of them each stream gets — live and on replay, in the
        hub's one ``seq`` order.  Any other publish or stream on it is refused
        with :class:`~ssehub.errors.InvalidTopicError`.
        """
        validate_topic(topic)
        self._adapter_topics[topic] = encode_row

    def encode_stored(self, stored: StoredEvent) -> bytes:
        """The wire chunk of a stored event: ``id``, optional ``event``, ``data``.

        An adapter topic's rows are encoded by its adapter (:meth:`adopt_topic`).
        Raises :class:`~ssehub.errors.EncodeError` for a row that can't be sent.
        """
        adapter = self._adapter_topics.get(stored.topic)
        if adapter is not None:
            return adapter(stored)
        return encode(
            ServerSentEvent(
                data=stored.data,
                event=stored.event,
                id=format_cursor(self.backend.epoch, stored.seq),
            )
        )

    def _encode_rows(self, rows: Iterable[StoredEvent], sub: Subscription) -> bytes:
        """The wire chunks of ``rows`` joined; rows that can't be encoded are skipped.

        A row is kept only when ``sub`` admits it (a private one needs its grant);
        a tagged ``sub`` gets each behind its ``topic:`` line (:func:`_topic_line`).
        """
        chunks: list[bytes] = []
        tagged = sub.tagged
        for row in rows:
            if (row.private or sub.accept is not None) and not sub.admits(row):
                continue
            try:
                chunk = self.encode_stored(row)
            except EncodeError as exc:
                self._skip(row, exc)
                continue
            if tagged:
                chunks.append(_topic_line(row.topic))
            chunks.append(chunk)
        return b"".join(chunks)

    def _skip(self, row: StoredEvent, exc: EncodeError) -> None:
        self.stats.skipped += 1
        logger.warning(
            "skipped stored event %d of %r: it can't be encoded (%s)", row.seq, row.topic, exc
        )

    # LiveListener
    def on_event(self, event: StoredEvent) -> None:
        """Fan a live event out to its topic's subscribers (encoded once)."""
        stats = self.stats
        stats.published += 1
        if event.private:  # private topics are never listed (metrics, dashboards)
            stats.mark_private(event.topic)
        elif stats.listed(event.topic):
            stats.count_topic(stats.per_topic_published, event.topic, 1)
        subs = self._by_topic.get(event.topic)
        if subs and (event.private or event.topic in self._adapter_topics):
            subs = _admitted(subs, event)
        delivered = 0
        if subs:
            try:
                chunk = self.encode_stored(event)
            except EncodeError as exc:
                self._skip(event, exc)
                subs = None
        if subs:
            seq = event.seq
            tagged: bytes | None = None  # the chunk behind its topic line, built once if asked
            # A push can close a subscriber that fell behind; it leaves the set after the loop.
            self._fanning_out = True
            try:
                for sub in subs:
                    if sub.tagged:
                        if tagged is None:
                            tagged = _topic_line(event.topic) + chunk
                        sub.push(seq, tagged, wake=False)
                    else:
                        sub.push(seq, chunk, wake=False)
            finally:
                self._fanning_out = False
                if self._leaving:
                    self._unregister_leaving()
            self._dirty.update(subs)
            self._schedule_flush()
            delivered = len(subs)
            stats.delivered += delivered
            if stats.listed(event.topic):
                stats.count_topic(stats.per_topic_delivered, event.topic, delivered)
        for observer in self._observers:
            observer(event, delivered)

    def _schedule_flush(self) -> None:
        """Wake the writers of the queued events: at once, or at most once per interval.

        A flush is due ``flush_interval`` after the previous one *began*, and
        at least half an interval after its writes *ended*.  At a steady rate
        below one event per interval whose writes fit in half of it (100 ev/s
        to 1,000 subscribers), every event is written as soon as it arrives;
        when the writes take longer, flushes follow one another with half an
        interval free for publishers and new subscribers, each carrying every
        event queued meanwhile (one write per subscriber for all of them).
        """
        if self._flush_handle is not None:
            return  # a flush is already due; these events ride along
        loop = asyncio.get_running_loop()
        interval = self.config.flush_interval
        due = max(self._flush_began + interval, self._last_flush + interval / 2)
        if due <= loop.time():
            self._flush_handle = loop.call_soon(self._flush)
        else:
            self._flush_handle = loop.call_at(due, self._flush)

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        self._flush_began = self._last_flush = loop.time()
        dirty, self._dirty = self._dirty, set()
        for sub in dirty:
            sub.wake()
        # The woken writers run in the next loop iteration, in wake order; this
        # callback runs right after the last of them, so ``_last_flush`` marks
        # the end of the writes.
        self._flush_handle = loop.call_soon(self._flush_done)

    def _flush_done(self) -> None:
        self._flush_handle = None
        self._last_flush = asyncio.get_running_loop().time()
        self.stats.flushes += 1
        self.stats.flush_seconds += self._last_flush - self._flush_began
        if self._dirty:
            self._schedule_flush()

    def on_gap(self) -> None:
        """The live feed may have missed events: every client resumes from history."""
        logger.warning("live feed gap: closing %d streams so they resume", len(self._streams))
        for stream in list(self._streams):
            stream.close("gap")

    # -- subscribing ---------------------------------------------------------

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def topic_subscribers(self) -> dict[str, int]:
        """How many streams listen to each topic right now (topics of private events left out)."""
        listed = self.stats.listed
        return {topic: len(subs) for topic, subs in self._by_topic.items() if listed(topic)}

    def subscriber_count(self, topic: str) -> int:
        """How many streams of this process listen to ``topic`` now (private topics too)."""
        return len(self._by_topic.get(topic, ()))

    async def open(
        self,
        topics: Sequence[str],
        last_event_id: str | None = None,
        *,
        grant: TopicGrant = NO_GRANT,
        expires_at: float | None = None,
        accept: Accept | None = None,
        rewind: Rewind | None = None,
        tagged: bool = False,
    ) -> Stream:
        """Open a stream of ``topics``, resuming after ``last_event_id`` if given.

        Without a cursor, ``rewind`` (``hub/_rewind.py``) starts the stream in
        the retained history (everything, the last N events, the last S
        seconds) instead of at the head; a cursor always wins.

        ``grant`` selects the topics whose *private* events the stream gets
        (live and on replay; public events reach every stream).  With
        ``expires_at`` (``wall_clock`` seconds: its token's ``exp``) the stream
        is ended with a jittered ``retry:`` no later than then (:meth:`tick`).
        ``accept`` (needed on an adapter's topic, see :meth:`adopt_topic`)
        replaces the grant test: it alone decides which events the stream gets.
        ``tagged`` puts a ``topic: <name>`` line before each event's other
        lines, live and on replay (``?tag=topic``; an adapter's topics never are).

        The stream is registered at once (live events are held from now on);
        the caller must :meth:`Stream.run` it, or :meth:`Stream.close` it.
        Raises :class:`~ssehub.errors.InvalidTopicError` for a bad topic,
        :class:`~ssehub.errors.HubClosingError` while the hub drains and
        :class:`~ssehub.errors.BackendUnavailableError` when the store is down.
        """
        if self.closing:
            raise HubClosingError("the hub is shutting down")
        names = tuple(dict.fromkeys(validate_topic(t) for t in topics))
        if not names:
            raise HubError("subscribe to at least one topic")
        if any(t in self._adapter_topics for t in names):
            if accept is None:
                raise InvalidTopicError("this topic is reserved for a protocol adapter")
            tagged = False  # an adapter owns its topics' wire format
        config = self.config
        sub = Subscription(
            names,
            max_events=config.max_queue_events,
            max_bytes=config.max_queue_bytes,
            grant=grant,
            accept=accept,
            tagged=tagged,
        )
        self._register(sub)
        try:
            head = await self.backend.head()
        except BaseException:
            self._unregister(sub)
            raise
        check = check_cursor(last_event_id, epoch=self.backend.epoch, head=head)
        lenient = False
        if rewind is not None and check.outcome is CursorOutcome.FRESH:
            try:
                after = await self._rewind_after(names, rewind, head, grant)
            except BaseException:
                self._unregister(sub)
                raise
            check = CursorCheck(CursorOutcome.RESUME, after)
            lenient = True
        self.stats.opened += 1
        epoch, retry = self.backend.epoch, config.retry
        replay: Callable[[], AsyncIterator[bytes]] | None = None
        if check.outcome is CursorOutcome.RESUME:
            # Repeat the client's own cursor with the retry: one control block.
            start = encode(ServerSentEvent(id=format_cursor(epoch, check.after), retry=retry))
            after = check.after

            def replay() -> AsyncIterator[bytes]:
                return self._replay(sub, after, head, lenient=lenient)

        elif check.outcome is CursorOutcome.RESET:
            start = self._reset_chunk(check.reason, last_event_id, head, retry=retry)
        else:
            start = encode(ServerSentEvent(id=format_cursor(epoch, head), retry=retry))
        if replay is None:
            sub.go_live(head)
        stream = Stream(
            sub, start, replay, clock=self.clock, on_close=self._closed, on_end=self._ended
        )
        stream.expires_at = expires_at
        self._streams.add(stream)
        return stream

    def _reset_chunk(
        self, reason: str, last_event_id: str | None, head: int, retry: int | None = None
    ) -> bytes:
        """The reserved reset event: ``data`` names the reason and the refused cursor.

        The refused cursor is echoed back cut to :data:`MAX_ECHOED_CURSOR` characters.
        """
        self.stats.resets += 1
        echoed = last_event_id
        if echoed is not None and len(echoed) > MAX_ECHOED_CURSOR:
            echoed = echoed[:MAX_ECHOED_CURSOR] + "…"
        payload = {"reason": reason, "last_event_id": echoed}
        return encode(
            ServerSentEvent(
                data=json.dumps(payload),
                event=RESET_EVENT,
                id=format_cursor(self.backend.epoch, head),
                retry=retry,
            )
        )

    async def _rewind_after(
        self, topics: Sequence[str], rewind: Rewind, head: int, grant: TopicGrant
    ) -> int:
        """The ``seq`` a rewound stream replays after (see ``hub/_rewind.py``).

        ``since=earliest`` reads nothing.  A count or a duration scans the
        topics' retained history forward in bounded steps (``replay_batch``
        events, half of ``max_queue_bytes``), keeping at most N seqs: the
        cost is one read of the retained history, which retention bounds.
        Private events the grant does not select are not counted.
        """
        if rewind.events is None and rewind.seconds is None:
            return 0
        config = self.config
        step_bytes = max(1, config.max_queue_bytes // 2)
        cutoff = self.wall_clock() - rewind.seconds if rewind.seconds is not None else None
        last: deque[int] = deque(maxlen=rewind.events or 1)
        after = 0
        while True:
            result = await self.backend.read(
                topics, after, config.replay_batch, max_bytes=step_bytes
            )
            for row in result.events:
                if row.private and not grant.allows(row.topic):
                    continue
                if cutoff is not None and row.time >= cutoff:
                    return row.seq - 1
                last.append(row.seq)
            if result.events:
                after = result.events[-1].seq
            if not result.more or after >= head:
                break
        if cutoff is not None:
            return head
        return last[0] - 1 if len(last) == last.maxlen else 0

    async def _replay(
        self, sub: Subscription, after: int, head: int, *, lenient: bool = False
    ) -> AsyncIterator[bytes]:
        """History after ``after`` in bounded steps, then switch ``sub`` to live events.

        A step holds at most ``replay_batch`` events and about half of
        ``max_queue_bytes`` bytes (one event more when a single event is larger),
        and only its encoded chunk is kept while the client takes it.
        If retention removed anything after the cursor (at the start or while a
        slow client replayed), the client gets the reset event and goes live —
        except at the first step of a rewind (``lenient``), which asked for what
        is retained.
        """
        config = self.config
        # Half the queue bound per step: one step may sit in the transport's buffer
        # while the next waits to be written, so about max_queue_bytes are in flight.
        step_bytes = max(1, config.max_queue_bytes // 2)
        while not sub.closed:
            try:
                result = await self.backend.read(
                    sub.topics, after, config.replay_batch, max_bytes=step_bytes
                )
            except HubError as exc:
                logger.warning("replay for a subscriber of %s failed: %s", sub.topics, exc)
                sub.close("store-unavailable")
                return
            gap, lenient = result.gap and not lenient, False
            if gap:
                # What the client already got stays got: the reset's id is past it.
                top = max(head, after)
                sub.go_live(top)
                yield self._reset_chunk(
                    "history-gap", format_cursor(self.backend.epoch, after), top
                )
                return
            more = result.more
            chunk = b""
            if result.events:
                after = result.events[-1].seq
                self.stats.replayed += len(result.events)
                chunk = self._encode_rows(result.events, sub)
            del result  # only the encoded chunk is held while the client reads it
            if chunk:
                yield chunk
            if not more:
                break
        sub.go_live(after)

    def _closed(self, stream: Stream) -> None:
        reason = stream.close_reason
        if reason == "slow":
            self.stats.slow_closes += 1
            logger.info(
                "closed a slow subscriber of %s; it resumes from history",
                stream.subscription.topics,
            )
        if self._fanning_out:
            self._leaving.append(stream.subscription)
        else:
            self._unregister(stream.subscription)

    def _ended(self, stream: Stream) -> None:
        """The stream's connection is done with: it no longer counts as open."""
        self._streams.discard(stream)

    def _unregister_leaving(self) -> None:
        leaving, self._leaving = self._leaving, []
        for sub in leaving:
            self._unregister(sub)
            self._dirty.discard(sub)

    def _register(self, sub: Subscription) -> None:
        for topic in sub.topics:
            self._by_topic.setdefault(topic, set()).add(sub)

    def _unregister(self, sub: Subscription) -> None:
        for topic in sub.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[topic]


def _topic_line(topic: str) -> bytes:
    """The field line that names an event's topic on a tagged stream: ``topic: <name>\\n``.

    An unknown field to the WHATWG parser (ignored: nothing else changes), so
    tagged streams stay readable by every conforming client.  A valid topic
    holds no CR, LF or NUL (``_topics.validate_topic``), so the line can't
    forge another field.
    """
    return b"topic: " + topic.encode() + b"\n"


def _admitted(subs: Iterable[Subscription], event: StoredEvent) -> set[Subscription]:
    """The subscriptions that admit ``event``; each distinct ``accept`` test runs once.

    Streams that share a test object (an adapter interns equal ones) share its answer.
    """
    answers: dict[Accept, bool] = {}
    admitted: set[Subscription] = set()
    for sub in subs:
        accept = sub.accept
        if accept is None:
            ok = sub.admits(event)
        else:
            known = answers.get(accept)
            ok = answers[accept] = accept(event) if known is None else known
        if ok:
            admitted.add(sub)
    return admitted
