"""The live fan-out: subscriptions by topic, one encoding per event, coalesced flushes.

The backend's live feed calls :meth:`Hub.on_event` once per event, in ``seq``
order, on every hub process sharing the store; it hands the event to
:meth:`FanOut.on_event`, which encodes it **once** (``id: {epoch}-{seq}``) and
gets the same ``bytes`` into the bounded queue of every subscription to its
topic (a *tagged* stream, ``?tag=topic``, gets them behind one ``topic: <name>``
line, built at most once per event and only when such a stream is there).
Public events of topics no adapter filters wait in *runs* (one topic each, in
``seq`` order) until the flush, which joins each run once and queues it for
every subscriber in one call: a flush costs one push per subscriber, not one
per subscriber and event.  Each :class:`~ssehub.hub.Stream` (``_stream.py``)
writes everything queued in one write; the flush that wakes the writers uses
the event loop's own timer (:meth:`FanOut._schedule_flush`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Container, Iterable

from ..errors import EncodeError
from ._config import HubConfig
from ._stats import HubStats
from ._subscription import Accept, Subscription
from ._types import StoredEvent
from ._wire import skip_row, topic_line

__all__ = ["FanOut", "admitted", "next_flush_due"]


class _Run:
    """Consecutive pending events of one topic: their seqs and wire chunks."""

    __slots__ = ("chunks", "seqs", "topic")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.seqs: list[int] = []
        self.chunks: list[bytes] = []


class FanOut:
    """The live side of one hub: who listens to which topic, and waking their writers.

    ``encode_row`` is the hub's one encoding of a stored row (it may raise
    :class:`~ssehub.errors.EncodeError`); ``adapter_topics`` (the hub's own,
    live container) names the topics whose streams each carry an ``accept`` test.
    """

    def __init__(
        self,
        config: HubConfig,
        stats: HubStats,
        *,
        encode_row: Callable[[StoredEvent], bytes],
        adapter_topics: Container[str],
    ) -> None:
        self.config = config
        self.stats = stats
        self._encode_row = encode_row
        self._adapter_topics = adapter_topics
        self.by_topic: dict[str, set[Subscription]] = {}
        self.observers: list[Callable[[StoredEvent, int], None]] = []
        self._dirty: set[Subscription] = set()
        self._fanning_out = False
        self._leaving: list[Subscription] = []
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush = float("-inf")
        self._flush_began = float("-inf")
        #: Plain events since the last flush, as runs of one topic each, in ``seq`` order.
        self._pending: list[_Run] = []
        self._pending_count = 0
        self._pending_bytes = 0

    # -- who listens ---------------------------------------------------------

    def register(self, sub: Subscription) -> None:
        """Listen to ``sub``'s topics from now on (its queue holds live events)."""
        for topic in sub.topics:
            self.by_topic.setdefault(topic, set()).add(sub)

    def unregister(self, sub: Subscription) -> None:
        for topic in sub.topics:
            subs = self.by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self.by_topic[topic]

    def leave(self, sub: Subscription) -> None:
        """Unregister a closed ``sub``: at once, or after the fan-out loop it closed in."""
        if self._fanning_out:
            self._leaving.append(sub)
        else:
            self.unregister(sub)

    def _unregister_leaving(self) -> None:
        leaving, self._leaving = self._leaving, []
        for sub in leaving:
            self.unregister(sub)
            self._dirty.discard(sub)

    # -- one live event ------------------------------------------------------

    def on_event(self, event: StoredEvent) -> None:
        """Fan a live event out to its topic's subscribers (encoded once).

        A *plain* event (not private, of a topic no adapter filters) joins the
        pending run of its topic, pushed to every subscriber at the next flush
        in one :meth:`~Subscription.push_run` each; any other event first pushes
        what is pending, so every subscriber still sees ``seq`` order.  With
        ``flush_interval`` 0 (or a pending run over a queue bound) runs are
        pushed at once.
        """
        stats = self.stats
        stats.published += 1
        if event.private:  # private topics are never listed (metrics, dashboards)
            stats.mark_private(event.topic)
        elif stats.listed(event.topic):
            stats.count_topic(stats.per_topic_published, event.topic, 1)
        subs = self.by_topic.get(event.topic)
        delivered = 0
        if subs and not event.private and event.topic not in self._adapter_topics:
            delivered = self._pend(event, len(subs))
        else:
            self._push_pending()
            if subs and (event.private or event.topic in self._adapter_topics):
                subs = admitted(subs, event)
            if subs:
                delivered = self._push_one(event, subs)
        if delivered:
            stats.delivered += delivered
            if stats.listed(event.topic):
                stats.count_topic(stats.per_topic_delivered, event.topic, delivered)
        for observer in self.observers:
            observer(event, delivered)

    def _encode(self, event: StoredEvent) -> bytes | None:
        try:
            return self._encode_row(event)
        except EncodeError as exc:
            skip_row(self.stats, event, exc)
            return None

    def _pend(self, event: StoredEvent, listeners: int) -> int:
        """Add a plain event to its topic's pending run; the subscribers it will reach."""
        chunk = self._encode(event)
        if chunk is None:
            return 0
        runs = self._pending
        if runs and runs[-1].topic == event.topic:
            run = runs[-1]
        else:
            run = _Run(event.topic)
            runs.append(run)
        run.seqs.append(event.seq)
        run.chunks.append(chunk)
        self._pending_count += 1
        self._pending_bytes += len(chunk)
        config = self.config
        if (
            config.flush_interval <= 0
            or self._pending_count >= config.max_queue_events
            or self._pending_bytes >= config.max_queue_bytes
        ):
            self._push_pending()
        self._schedule_flush()
        return listeners

    def _push_pending(self) -> None:
        """Push every pending run, in order, into its subscribers' queues."""
        runs = self._pending
        if not runs:
            return
        self._pending = []
        self._pending_count = self._pending_bytes = 0
        self._fanning_out = True  # a push can close a subscriber; it leaves after the loop
        try:
            for run in runs:
                subs = self.by_topic.get(run.topic)
                if subs:
                    self._push_run(run, subs)
        finally:
            self._fanning_out = False
            if self._leaving:
                self._unregister_leaving()

    def _push_one(self, event: StoredEvent, subs: set[Subscription]) -> int:
        """Push one filtered event to ``subs`` now; how many it reached (0 if unencodable)."""
        chunk = self._encode(event)
        if chunk is None:
            return 0
        run = _Run(event.topic)
        run.seqs.append(event.seq)
        run.chunks.append(chunk)
        self._fanning_out = True
        try:
            self._push_run(run, subs)
        finally:
            self._fanning_out = False
            if self._leaving:
                self._unregister_leaving()
        self._schedule_flush()
        return len(subs)

    def _push_run(self, run: _Run, subs: set[Subscription]) -> None:
        """Queue ``run`` for ``subs``: joined once, and once more behind its topic line if asked."""
        chunks = run.chunks
        joined = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        tagged: tuple[list[bytes], bytes] | None = None
        for sub in subs:
            if sub.tagged:
                if tagged is None:
                    line = topic_line(run.topic)
                    lines = [line + chunk for chunk in chunks]
                    tagged = lines, b"".join(lines)
                sub.push_run(run.seqs, *tagged)
            else:
                sub.push_run(run.seqs, chunks, joined)
        self._dirty.update(subs)

    # -- waking the writers --------------------------------------------------

    def _schedule_flush(self) -> None:
        """Wake the writers of the queued events: at once, or at most once per interval.

        When is :func:`next_flush_due`: at a steady rate below one event per
        interval whose writes fit in half of it (100 ev/s to 1,000
        subscribers), every event is written as soon as it arrives; when the
        writes take longer, flushes follow one another with at least as much
        time between them as the writes took, each carrying every event queued
        meanwhile (one write per subscriber for all of them).
        """
        if self._flush_handle is not None:
            return  # a flush is already due; these events ride along
        loop = asyncio.get_running_loop()
        due = next_flush_due(self._flush_began, self._last_flush, self.config.flush_interval)
        if due <= loop.time():
            self._flush_handle = loop.call_soon(self._flush)
        else:
            self._flush_handle = loop.call_at(due, self._flush)

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        self._flush_began = self._last_flush = loop.time()
        self._push_pending()
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
        if self._dirty or self._pending:
            self._schedule_flush()


def next_flush_due(began: float, ended: float, interval: float) -> float:
    """When a flush may begin after the one that began at ``began`` and ended at ``ended``.

    Loop times in seconds (``-inf``: no flush yet); ``interval`` is
    ``flush_interval`` (0: every event is written at once).  Flushes begin at
    least ``interval`` apart, and the writes of one take at most half of the
    loop's time: after writes that took longer than half an interval the loop
    pauses as long as they took.  The last rule is for overload (a burst to
    10,000 subscribers whose writes take longer than the interval): the loop
    then gives publishers, replays and new subscribers as much time as it gave
    the writes, so each flush carries more events per write instead of one
    write per event starving everything else.
    """
    if interval <= 0 or ended == float("-inf"):
        return ended
    return began + max(interval, 2 * (ended - began))


def admitted(subs: Iterable[Subscription], event: StoredEvent) -> set[Subscription]:
    """The subscriptions that admit ``event``; each distinct ``accept`` test runs once.

    Streams that share a test object (an adapter interns equal ones) share its answer.
    """
    answers: dict[Accept, bool] = {}
    chosen: set[Subscription] = set()
    for sub in subs:
        accept = sub.accept
        if accept is None:
            ok = sub.admits(event)
        else:
            known = answers.get(accept)
            ok = answers[accept] = accept(event) if known is None else known
        if ok:
            chosen.add(sub)
    return chosen
