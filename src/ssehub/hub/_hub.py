"""The hub: publish to topics, stream them to subscribers with exact resume.

The flow of one event (see ARCHITECTURE.md):

1. :meth:`Hub.publish` validates, encodes the event once to check it
   (:meth:`Hub.check_event`) and calls ``backend.append``; the store mints the
   event's ``seq``.
2. The backend's live feed calls :meth:`Hub.on_event` once per event, in
   ``seq`` order, on every hub process sharing the store; the live fan-out
   (``_fanout.py``) encodes it once and queues it for every subscriber.
3. Each :class:`~ssehub.hub.Stream` (``_stream.py``) writes everything queued
   in one write; the server only pumps its bytes.

A stream starts with :meth:`Hub.open`: its subscription is registered first
(live events are held), then the cursor is checked (``_cursor.check_cursor``),
history after it is replayed (``_replay.py``), and finally the held live events
above the replayed ``seq`` are released.

The hub's other rooms: :class:`HubConfig` (``_config.py``), :class:`HubStats`
(``_stats.py``), stored rows as stream bytes (``_wire.py``).

Time: stream deadlines and heartbeats use the injected monotonic ``clock``;
age retention (and rewinds by duration) use the injected ``wall_clock``
(seconds since the epoch, as the store stamps events); the flush of coalesced
live events uses the event loop's own timer.  :meth:`Hub.tick` does the
periodic work and tests call it directly with a fake clock.

Nothing outside the hub talks to its backend: servers and demos use the verbs
:attr:`Hub.epoch`, :meth:`Hub.head`, :meth:`Hub.read`, :attr:`Hub.feed_connected`
and :meth:`Hub.format_cursor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass

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
from ._config import HubConfig
from ._cursor import CursorCheck, CursorOutcome, check_cursor, format_cursor
from ._fanout import FanOut
from ._guard import WriteGuard
from ._replay import replay_steps, rewind_after
from ._rewind import Rewind
from ._stats import HubStats
from ._stream import Stream
from ._subscription import Accept, Subscription
from ._topics import validate_event_type, validate_topic
from ._types import ReadResult, StoredEvent
from ._wire import reset_chunk
from .backends import Backend

__all__ = ["Hub", "Published"]

logger = logging.getLogger("ssehub.hub")

#: A stream whose token expires within this many seconds is ended at the next tick
#: (ticks come at least once a second), so it never outlives its token.
TOKEN_EXPIRY_MARGIN = 1.5


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
        self._streams: set[Stream] = set()
        #: Write deadlines of responses the hub does not write itself (see :meth:`write_guard`).
        self._guards: set[WriteGuard] = set()
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        self._adapter_topics: dict[str, Callable[[StoredEvent], bytes]] = {}
        self._fanout = FanOut(
            self.config,
            self.stats,
            encode_row=self.encode_stored,
            adapter_topics=self._adapter_topics,
        )

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
        for guard in list(self._guards):
            if not guard.aborted and guard.overdue(now, deadline):
                guard.abort_pending_write()
                self.stats.write_timeouts += 1
                logger.info("a write was blocked over %.0f s; connection aborted", deadline)

    @contextlib.contextmanager
    def write_guard(self) -> Iterator[WriteGuard]:
        """A write deadline for a response the hub does not write itself (a plug-in's).

        While the block runs, :meth:`tick` applies the hub's deadline to the
        guard's :meth:`~WriteGuard.timed` writes, as to its own streams', and
        counts an abort in ``stats.write_timeouts``.  The writer attaches the
        guard to its task (``guard.attach(abort)``) before its first write.
        """
        guard = WriteGuard(self.clock)
        self._guards.add(guard)
        try:
            yield guard
        finally:
            self._guards.discard(guard)
            guard.detach()

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
        self._fanout.observers.append(observer)

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

    # LiveListener
    def on_event(self, event: StoredEvent) -> None:
        """Fan a live event out to its topic's subscribers (encoded once; ``_fanout.py``)."""
        self._fanout.on_event(event)

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
        return {topic: len(subs) for topic, subs in self._fanout.by_topic.items() if listed(topic)}

    def subscriber_count(self, topic: str) -> int:
        """How many streams of this process listen to ``topic`` now (private topics too)."""
        return len(self._fanout.by_topic.get(topic, ()))

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
        self._fanout.register(sub)
        try:
            head = await self.backend.head()
        except BaseException:
            self._fanout.unregister(sub)
            raise
        check = check_cursor(last_event_id, epoch=self.backend.epoch, head=head)
        lenient = False
        if rewind is not None and check.outcome is CursorOutcome.FRESH:
            try:
                after = await rewind_after(
                    self.backend, config, names, rewind, head, grant, now=self.wall_clock()
                )
            except BaseException:
                self._fanout.unregister(sub)
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
                return replay_steps(
                    self.backend,
                    config,
                    self.stats,
                    sub,
                    after,
                    head,
                    encode_row=self.encode_stored,
                    reset=self._gap_reset,
                    lenient=lenient,
                )

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
        """The reserved reset event, its id at ``head`` (``_wire.reset_chunk``)."""
        cursor = format_cursor(self.backend.epoch, head)
        return reset_chunk(self.stats, reason, last_event_id, cursor, retry)

    def _gap_reset(self, reason: str, refused: int, head: int) -> bytes:
        """The reset event of a replay that met a history gap after ``refused``."""
        return self._reset_chunk(reason, format_cursor(self.backend.epoch, refused), head)

    def _closed(self, stream: Stream) -> None:
        reason = stream.close_reason
        if reason == "slow":
            self.stats.slow_closes += 1
            logger.info(
                "closed a slow subscriber of %s; it resumes from history",
                stream.subscription.topics,
            )
        self._fanout.leave(stream.subscription)

    def _ended(self, stream: Stream) -> None:
        """The stream's connection is done with: it no longer counts as open."""
        self._streams.discard(stream)
