"""A subscription: one stream's bounded queue of encoded chunks.

Conventions:

* Chunks are ``bytes`` already encoded for the wire.  A live event's chunk is
  encoded once per event by the hub and shared by every subscription; a
  ``tagged`` subscription gets the same chunk behind one ``topic: <name>``
  line, also built once per event.
* Live events are pushed with their ``seq``; a subscription delivers each
  ``seq`` at most once and only above its cursor (``last_seq``), so live events
  that overlap a replay from history are dropped, never duplicated.
* While the stream replays history (``live`` is false), pushed live events are
  held aside and released by :meth:`Subscription.go_live`.
* The queue (and the held events) are bounded by events and by bytes.  A
  subscriber that falls behind is closed with reason ``"slow"``: the client
  reconnects with its ``Last-Event-ID`` and resumes from history, so nothing is
  lost while the history holds it.  Memory per subscriber never exceeds the bound.
* The subscription knows nothing of time or of writes: its
  :class:`~ssehub.hub.Stream` owns those.  ``on_close`` tells the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ._access import NO_GRANT, TopicGrant
from ._types import StoredEvent

#: A subscription's own test of an event (an adapter's selectors); see :meth:`Subscription.admits`.
Accept = Callable[[StoredEvent], bool]

__all__ = ["Accept", "Subscription"]


class Subscription:
    """A bounded, seq-aware queue of wire chunks for one stream."""

    __slots__ = (
        "_held",
        "_held_bytes",
        "_queue",
        "_queued_bytes",
        "_queued_count",
        "_waiter",
        "accept",
        "close_reason",
        "closed",
        "grant",
        "last_seq",
        "live",
        "max_bytes",
        "max_events",
        "on_close",
        "tagged",
        "topics",
    )

    def __init__(
        self,
        topics: tuple[str, ...],
        *,
        max_events: int = 1000,
        max_bytes: int = 4 * 1024 * 1024,
        on_close: Callable[[Subscription], None] | None = None,
        grant: TopicGrant = NO_GRANT,
        accept: Accept | None = None,
        tagged: bool = False,
    ) -> None:
        self.topics = topics
        #: Each event's chunk starts with a ``topic: <name>`` line (``?tag=topic``);
        #: the hub pushes the tagged chunk (built once per event) to such streams.
        self.tagged = tagged
        #: When given, decides alone which events of its topics this stream gets
        #: (private ones included): an adapter's selectors and access rules.
        self.accept = accept
        #: The topics whose private events this subscriber may read (the hub filters).
        self.grant = grant
        self.max_events = max_events
        self.max_bytes = max_bytes
        #: The highest seq delivered to (or deliberately skipped for) this client.
        self.last_seq = 0
        self.live = False
        self.closed = False
        self.close_reason = ""
        # Both lists exist only while they hold something: most streams idle.
        self._queue: list[bytes] | None = None
        self._queued_bytes = 0
        #: Events and control chunks queued (a run pushed by :meth:`push_run` is one entry
        #: of ``_queue`` but counts each of its events).
        self._queued_count = 0
        #: Live events held while replaying; ``None`` once live (or empty before).
        self._held: list[tuple[int, bytes]] | None = None
        self._held_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        #: Called once, when the subscription closes (the stream that owns it listens).
        self.on_close = on_close

    def admits(self, event: StoredEvent) -> bool:
        """Whether ``event`` (of one of its topics) is for this stream.

        ``accept`` decides when given; otherwise a private event needs the grant.
        """
        if self.accept is not None:
            return self.accept(event)
        return not event.private or self.grant.allows(event.topic)

    # -- producer side -------------------------------------------------------

    def push(self, seq: int, chunk: bytes, *, wake: bool = True) -> None:
        """Queue a live event's chunk unless this client already has ``seq``.

        ``wake=False`` leaves the writer asleep: the hub wakes it with
        :meth:`wake` once per flush, so events that arrive close together go
        out in one write.
        """
        if self.closed:
            return
        if not self.live:
            held = self._held
            if held is None:
                held = self._held = []
            held.append((seq, chunk))
            self._held_bytes += len(chunk)
            if len(held) > self.max_events or self._held_bytes > self.max_bytes:
                self.close("slow")
            return
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        self._enqueue(chunk, wake)

    def push_run(self, seqs: list[int], chunks: list[bytes], joined: bytes) -> None:
        """Queue a run of live events (``seqs`` ascending; ``joined`` is ``chunks`` joined).

        The fan-out's batched path: one call and one queue entry per flush for
        the run of events that arrived meanwhile, shared by every subscriber
        that has none of them yet.  The bounds count each event; a subscriber
        that has some of them (a replay overlap) or is still replaying takes
        them one by one, as :meth:`push` would.  Never wakes the writer.
        """
        if self.closed:
            return
        if self.live and seqs[0] > self.last_seq:
            self.last_seq = seqs[-1]
            queue = self._queue
            if queue is None:
                self._queue = [joined]
            else:
                queue.append(joined)
            self._queued_bytes += len(joined)
            self._queued_count += len(seqs)
            if self._queued_count > self.max_events or self._queued_bytes > self.max_bytes:
                self.close("slow")
            return
        for seq, chunk in zip(seqs, chunks, strict=True):
            self.push(seq, chunk, wake=False)

    def push_control(self, chunk: bytes) -> None:
        """Queue a chunk that carries no event (a heartbeat, a ``retry:``) and wake the writer."""
        if not self.closed:
            self._enqueue(chunk, True)

    def _enqueue(self, chunk: bytes, wake: bool) -> None:
        queue = self._queue
        if queue is None:
            queue = self._queue = [chunk]
        else:
            queue.append(chunk)
        self._queued_bytes += len(chunk)
        self._queued_count += 1
        if self._queued_count > self.max_events or self._queued_bytes > self.max_bytes:
            self.close("slow")
        elif wake:
            self.wake()

    def wake(self) -> None:
        """Let the writer take what is queued."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def go_live(self, after: int) -> None:
        """End the replay at ``after`` and release the live events held meanwhile."""
        self.last_seq = max(self.last_seq, after)
        self.live = True
        held, self._held = self._held, None
        self._held_bytes = 0
        for seq, chunk in held or ():
            self.push(seq, chunk)

    def close(self, reason: str) -> None:
        """End the stream after what is queued; the first reason given wins.

        A ``"slow"`` close drops what is queued at once: it would only keep a
        stalled client's buffers full.
        """
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._held = None
        self._held_bytes = 0
        if reason == "slow":
            self._queue = None
            self._queued_bytes = 0
            self._queued_count = 0
        if self.on_close is not None:
            self.on_close(self)
        self.wake()

    # -- consumer side -------------------------------------------------------

    @property
    def queued(self) -> int:
        """How many events and control chunks wait to be written."""
        return self._queued_count

    @property
    def queued_bytes(self) -> int:
        """How many bytes wait to be written."""
        return self._queued_bytes

    def take(self) -> bytes | None:
        """Everything queued, joined into one write; ``None`` when nothing is queued.

        Once :attr:`closed`, a ``None`` means the stream is over.
        """
        queue = self._queue
        if not queue:
            return None
        self._queue = None
        self._queued_bytes = 0
        self._queued_count = 0
        return queue[0] if len(queue) == 1 else b"".join(queue)

    def waiter(self) -> asyncio.Future[None]:
        """A future done when something is queued or the subscription closes.

        Awaited directly by :meth:`Stream.run <ssehub.hub.Stream.run>`: a
        future costs an idle stream no coroutine frame of its own.
        """
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter
