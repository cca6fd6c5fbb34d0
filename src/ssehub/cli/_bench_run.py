"""The engine of ``ssehub bench``: N subscribers on one topic, K events, loss, order, latency.

Method (one asyncio loop; streams read by :mod:`._bench_stream`, publishes by httpx):

* Each subscriber opens ``GET {url}/topics/{topic}`` and is *ready* once the
  hub's first write (``retry:`` and the cursor ``id:``) arrives: from then on
  the hub delivers it every publish.  Publishing starts when all are ready.
* One publisher POSTs the K events one after another, so the hub's order is
  the publish order.  Each is a text body ``SEQ T_NS PADDING`` with event type
  ``bench``: ``SEQ`` counts from 1, ``T_NS`` is the injected monotonic clock
  (ns) just before the POST.  With ``rate``, event ``i`` is sent no earlier
  than ``start + (i - 1) / rate`` seconds.
* A subscriber parses with :class:`~ssehub.protocol.EventStreamParser`.  An
  event whose ``SEQ`` is the next expected one is a delivery in order; a
  smaller one is a duplicate; a larger one is a gap (counted once; the events
  skipped show up as lost).  Latency is the receive time (when its chunk was
  read) minus ``T_NS``, for every delivery.
* A stream that ends or breaks (the hub closes a subscriber that fell too far
  behind) is reopened at once with ``Last-Event-ID``, as the hub's contract
  says, and counted as a reconnect.  An ``ssehub-reset`` event counts as a
  reset: the hub could not resume it.
* The run ends when every subscriber has all K events, or when no delivery
  came for ``drain_timeout`` seconds after the last publish.

Durations are float seconds; clock readings are integer nanoseconds.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from ..hub import RESET_EVENT
from ..protocol import Event, EventStreamParser
from ._bench_stream import StreamRefused, StreamTarget, read_stream
from ._output import hub_error_message

__all__ = ["BenchConfig", "BenchError", "BenchResult", "Snapshot", "run_bench"]

EVENT_TYPE = "bench"
_POLL = 0.05


class BenchError(Exception):
    """The benchmark could not run (hub unreachable, refused a stream or a publish)."""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    url: str  # the hub's base URL
    subscribers: int = 50
    events: int = 500
    rate: float | None = None  # events per second; None: as fast as the hub answers
    size: int = 64  # bytes of data per event (at least what SEQ and T_NS take)
    topic: str = field(default_factory=lambda: f"bench/{secrets.token_hex(4)}")
    connect_timeout: float = 30.0
    drain_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Progress so far, for a progress bar."""

    ready: int
    published: int
    delivered: int


@dataclass(frozen=True, slots=True)
class BenchResult:
    url: str
    topic: str
    subscribers: int
    events: int
    size: int
    published: int
    expected: int  # subscribers × events
    delivered: int  # unique deliveries, in order or after a gap
    lost: int
    duplicates: int
    gaps: int
    resets: int
    reconnects: int
    publish_seconds: float
    deliver_seconds: float  # first publish to last delivery
    publish_rate: float  # events per second
    delivery_rate: float  # deliveries per second
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    errors: list[str]

    @property
    def ok(self) -> bool:
        """Every event reached every subscriber once, in order, and nothing failed."""
        return (
            self.published == self.events
            and self.lost == 0
            and self.duplicates == 0
            and self.gaps == 0
            and self.resets == 0
            and not self.errors
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class _Subscriber:
    """One event stream and what it received."""

    def __init__(self, url: str, events: int, clock_ns: Callable[[], int]) -> None:
        self.url = url
        self.events = events
        self.clock_ns = clock_ns
        self.next_seq = 1
        self.delivered = 0
        self.duplicates = 0
        self.gaps = 0
        self.resets = 0
        self.reconnects = 0
        self.last_delivery_ns = 0
        self.latencies_ns: array[int] = array("q")
        self.last_event_id = ""
        self.ready = asyncio.Event()
        self.complete = asyncio.Event()

    def _on_event(self, event: Event, now_ns: int) -> None:
        if event.event == RESET_EVENT:
            self.resets += 1
            return
        if event.event != EVENT_TYPE:
            return
        seq_text, _, rest = event.data.partition(" ")
        seq, sent_ns = int(seq_text), int(rest.partition(" ")[0])
        if seq < self.next_seq:
            self.duplicates += 1
            return
        if seq > self.next_seq:
            self.gaps += 1
        self.next_seq = seq + 1
        self.delivered += 1
        self.last_delivery_ns = now_ns
        self.latencies_ns.append(now_ns - sent_ns)
        if self.next_seq > self.events:
            self.complete.set()

    async def run(self, connect_timeout: float) -> None:
        """Read (and reopen) the stream until every event arrived or the task is cancelled."""
        target = StreamTarget.from_url(self.url)
        while not self.complete.is_set():
            headers = [("Accept", "text/event-stream"), ("Cache-Control", "no-store")]
            if self.last_event_id:
                headers.append(("Last-Event-ID", self.last_event_id))
            parser = EventStreamParser(last_event_id=self.last_event_id)

            def on_chunk(chunk: bytes, parser: EventStreamParser = parser) -> bool:
                self.ready.set()
                now_ns = self.clock_ns()
                for event in parser.feed(chunk):
                    self._on_event(event, now_ns)
                return not self.complete.is_set()

            try:
                await read_stream(target, headers, on_chunk, connect_timeout=connect_timeout)
            except (OSError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
                raise BenchError(f"cannot reach the hub at {self.url}: {reason}") from exc
            except StreamRefused as exc:
                if exc.status_code is None:
                    raise BenchError(f"{self.url} closed the connection without answering") from exc
                message = hub_error_message(exc.status_code, exc.body)
                raise BenchError(f"{self.url}: {message}") from exc
            self.last_event_id = parser.last_event_id
            if not self.complete.is_set():
                self.reconnects += 1


def _payload(seq: int, sent_ns: int, size: int) -> str:
    text = f"{seq} {sent_ns}"
    return f"{text} {'x' * (size - len(text) - 1)}" if size > len(text) + 1 else text


def _percentile(ordered: array[int] | list[int], fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[round(fraction * (len(ordered) - 1))] / 1e6


async def _wait_ready(
    subscribers: list[_Subscriber], tasks: list[asyncio.Task[None]], timeout: float
) -> None:
    """Return once every subscriber is ready; raise the first subscriber's error, or on timeout."""
    deadline = time.monotonic() + timeout
    while not all(s.ready.is_set() for s in subscribers):
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise BenchError(str(task.exception()))
        if time.monotonic() > deadline:
            ready = sum(s.ready.is_set() for s in subscribers)
            raise BenchError(
                f"only {ready} of {len(subscribers)} subscribers connected in {timeout:g}s"
            )
        await asyncio.sleep(_POLL)


class _Run:
    """One benchmark run: its subscribers, its publisher, its counters."""

    def __init__(self, config: BenchConfig, clock_ns: Callable[[], int]) -> None:
        self.config = config
        self.clock_ns = clock_ns
        base = config.url.rstrip("/")
        self.topic_url = f"{base}/topics/{quote(config.topic, safe='/')}"
        self.subscribers = [
            _Subscriber(self.topic_url, config.events, clock_ns) for _ in range(config.subscribers)
        ]
        self.published = 0
        self.first_publish_ns = 0
        self.last_publish_ns = 0

    def snapshot(self) -> Snapshot:
        subs = self.subscribers
        return Snapshot(
            ready=sum(s.ready.is_set() for s in subs),
            published=self.published,
            delivered=sum(s.delivered for s in subs),
        )

    async def publish(self, client: httpx.AsyncClient) -> None:
        config = self.config
        start = self.clock_ns()
        self.first_publish_ns = start
        for seq in range(1, config.events + 1):
            if config.rate:
                wait_ns = start + int((seq - 1) * 1e9 / config.rate) - self.clock_ns()
                if wait_ns > 0:
                    await asyncio.sleep(wait_ns / 1e9)
            sent_ns = self.clock_ns()
            try:
                response = await client.post(
                    self.topic_url,
                    params={"event": EVENT_TYPE},
                    content=_payload(seq, sent_ns, config.size).encode(),
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                )
            except httpx.HTTPError as exc:
                raise BenchError(f"publishing to {self.topic_url} failed: {exc}") from exc
            if response.status_code != 201:
                message = hub_error_message(response.status_code, response.content)
                raise BenchError(f"the hub refused event {seq}: {message}")
            self.published += 1
        self.last_publish_ns = self.clock_ns()

    async def drain(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait until every subscriber is complete or deliveries stall for drain_timeout."""
        last = self.snapshot().delivered
        last_progress = time.monotonic()
        while not all(
            s.complete.is_set() or t.done() for s, t in zip(self.subscribers, tasks, strict=True)
        ):
            await asyncio.sleep(_POLL)
            delivered = self.snapshot().delivered
            if delivered != last:
                last, last_progress = delivered, time.monotonic()
            elif time.monotonic() - last_progress > self.config.drain_timeout:
                return

    def result(self, tasks: Iterable[asyncio.Task[None]]) -> BenchResult:
        config, subs = self.config, self.subscribers
        errors = sorted(
            {
                str(task.exception())
                for task in tasks
                if task.done() and not task.cancelled() and task.exception() is not None
            }
        )
        latencies = sorted(value for s in subs for value in s.latencies_ns)
        delivered = sum(s.delivered for s in subs)
        expected = config.subscribers * config.events
        publish_ns = max(self.last_publish_ns - self.first_publish_ns, 1)
        last_delivery = max((s.last_delivery_ns for s in subs), default=0)
        deliver_ns = max(last_delivery - self.first_publish_ns, 1)
        return BenchResult(
            url=config.url,
            topic=config.topic,
            subscribers=config.subscribers,
            events=config.events,
            size=config.size,
            published=self.published,
            expected=expected,
            delivered=delivered,
            lost=expected - delivered,
            duplicates=sum(s.duplicates for s in subs),
            gaps=sum(s.gaps for s in subs),
            resets=sum(s.resets for s in subs),
            reconnects=sum(s.reconnects for s in subs),
            publish_seconds=publish_ns / 1e9,
            deliver_seconds=deliver_ns / 1e9,
            publish_rate=self.published / (publish_ns / 1e9),
            delivery_rate=delivered / (deliver_ns / 1e9),
            latency_p50_ms=_percentile(latencies, 0.50),
            latency_p99_ms=_percentile(latencies, 0.99),
            latency_max_ms=latencies[-1] / 1e6 if latencies else None,
            errors=errors[:5],
        )


async def run_bench(
    config: BenchConfig,
    *,
    on_progress: Callable[[Snapshot], object] | None = None,
    clock_ns: Callable[[], int] = time.monotonic_ns,
) -> BenchResult:
    """Run one benchmark against the hub at ``config.url``; raise :class:`BenchError` if it can't.

    ``on_progress`` gets a :class:`Snapshot` every 0.1 s and once at the end.
    """
    run = _Run(config, clock_ns)
    async with httpx.AsyncClient(timeout=config.connect_timeout) as publisher:
        tasks = [asyncio.create_task(s.run(config.connect_timeout)) for s in run.subscribers]

        async def report() -> None:
            while on_progress is not None:
                on_progress(run.snapshot())
                await asyncio.sleep(0.1)

        reporter = asyncio.create_task(report())
        try:
            await _wait_ready(run.subscribers, tasks, config.connect_timeout)
            await run.publish(publisher)
            await run.drain(tasks)
        finally:
            reporter.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(reporter, *tasks, return_exceptions=True)
        if on_progress is not None:
            on_progress(run.snapshot())
        return run.result(tasks)
