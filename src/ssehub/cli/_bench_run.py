"""What ``ssehub bench`` measures: N subscribers on one topic, K events, loss, order, latency.

The engine is the one ``python -m benchmarks.bench_hub`` uses (:mod:`._bench_load`
driving :mod:`._bench_streams` worker processes); this module runs it once and turns
what it saw into a :class:`BenchResult`.  Method:

* ``procs`` worker processes open ``GET {url}/topics/{topic}`` streams; a stream is
  *ready* once the hub's first write (``retry:`` and the cursor ``id:``) arrived: from
  then on the hub delivers it every publish.  Publishing starts when all are ready.
* One publisher POSTs the K events on one connection, each waiting for its ``201``,
  so the hub's order is the publish order.  Each is ``{"data": "SEQ T_NS PADDING",
  "event": "bench"}``: ``SEQ`` counts from 1, ``T_NS`` is :func:`time.monotonic_ns`
  just before the POST.  With ``rate``, event ``i`` is sent no earlier than
  ``start + (i - 1) / rate`` seconds.
* A delivery of the next expected ``SEQ`` is in order; a larger one is a gap (the
  events skipped are lost); a smaller one a duplicate.  Latency is the time its
  chunk was read minus ``T_NS``.
* A stream that ends (the hub closes a subscriber that fell too far behind) is
  reopened with ``Last-Event-ID``, counted as a reconnect; an ``ssehub-reset``
  event counts as a reset.  A stream whose server breaks the protocol or a bound
  (a line over 4 MiB, a head over 64 KiB) is given up, with one error.
* The run ends when every subscriber has all K events (or broke), or when no
  delivery came for ``drain_timeout`` seconds after the last publish.

Durations are float seconds.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from ._bench_load import LoadClient, Measurement, Publisher, PublishReport
from ._output import hub_error_message

__all__ = ["EVENT_TYPE", "BenchConfig", "BenchError", "BenchResult", "Snapshot", "run_bench"]

EVENT_TYPE = "bench"
_POLL = 0.1
_REFUSAL = re.compile(r"HTTP (\d{3}) (.*)", re.DOTALL)


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
    procs: int = 1  # worker processes holding the streams


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


def describe_error(error: str, url: str) -> str:
    """A worker's error as one line for the user: the hub's own message for a refusal."""
    refusal = _REFUSAL.fullmatch(error)
    if refusal is not None:
        return f"{url}: {hub_error_message(int(refusal[1]), refusal[2].encode())}"
    if error.startswith("cannot connect: "):
        return f"cannot reach the hub at {url}: {error.removeprefix('cannot connect: ')}"
    return f"{url}: {error}"


def _percentile(ordered: list[int], fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[round(fraction * (len(ordered) - 1))] / 1e6


def result(
    config: BenchConfig, got: Measurement, published: PublishReport, url: str
) -> BenchResult:
    """The figures of one run from what the workers saw and what the publisher did."""
    latencies = sorted(got.latencies_ns)
    expected = config.subscribers * config.events
    delivered = got.in_order + got.gaps
    publish_ns = max(published.last_ns - published.first_ns, 1)
    deliver_ns = max(got.last_delivery_ns - published.first_ns, 1)
    errors = [describe_error(e, url) for e in got.errors]
    errors += [f"{url}: {failure}" for failure in published.failures]
    return BenchResult(
        url=config.url,
        topic=config.topic,
        subscribers=config.subscribers,
        events=config.events,
        size=config.size,
        published=published.published,
        expected=expected,
        delivered=delivered,
        lost=expected - delivered,
        duplicates=got.duplicates,
        gaps=got.gaps,
        resets=got.resets,
        reconnects=got.reconnects,
        publish_seconds=publish_ns / 1e9,
        deliver_seconds=deliver_ns / 1e9,
        publish_rate=published.published / (publish_ns / 1e9),
        delivery_rate=delivered / (deliver_ns / 1e9),
        latency_p50_ms=_percentile(latencies, 0.50),
        latency_p99_ms=_percentile(latencies, 0.99),
        latency_max_ms=latencies[-1] / 1e6 if latencies else None,
        errors=errors[:5],
    )


class _Progress(threading.Thread):
    """Reports a :class:`Snapshot` every 0.1 s until stopped."""

    def __init__(
        self,
        load: LoadClient,
        ready: int,
        publisher: Publisher,
        report: Callable[[Snapshot], object],
    ) -> None:
        super().__init__(daemon=True)
        self.load, self.ready, self.publisher, self.report = load, ready, publisher, report
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(_POLL):
            delivered = self.load.status()["delivered"]
            self.report(Snapshot(self.ready, self.publisher.accepted, delivered))


def _drain(load: LoadClient, config: BenchConfig) -> None:
    """Until every stream is complete or broken, or deliveries stall for drain_timeout."""
    last, last_change = -1, time.monotonic()
    while True:
        status = load.status()
        if status["complete"] + status["broken"] >= config.subscribers:
            return
        if status["delivered"] != last:
            last, last_change = status["delivered"], time.monotonic()
        elif time.monotonic() - last_change > config.drain_timeout:
            return
        time.sleep(_POLL)


def _first_broken(load: LoadClient, url: str) -> BenchError | None:
    status = load.status()
    if status["broken"] and status["errors"]:
        return BenchError(describe_error(status["errors"][0], url))
    return None


def run_bench(
    config: BenchConfig, *, on_progress: Callable[[Snapshot], object] | None = None
) -> BenchResult:
    """Run one benchmark against the hub at ``config.url``; raise :class:`BenchError` if it can't.

    ``on_progress`` gets a :class:`Snapshot` every 0.1 s (from another thread) and
    once at the end.
    """
    base = httpx.URL(config.url)
    tls = base.scheme == "https"
    port = base.port or (443 if tls else 80)
    path = f"{base.raw_path.decode('ascii').rstrip('/')}/topics/{quote(config.topic, safe='/')}"
    url = str(base).rstrip("/")
    with LoadClient(config.procs) as load:
        opened = load.open(
            [(base.host, port)],
            path,
            config.subscribers,
            timeout=config.connect_timeout,
            tls=tls,
            resume=True,
        )
        if opened.failed:
            raise BenchError(describe_error(opened.errors[0], url) if opened.errors else "failed")
        broken = _first_broken(load, url)
        if broken is not None:
            raise broken
        load.arm(config.events, latency=True, deadline_ns=time.monotonic_ns() + 86_400 * 10**9)
        publisher = Publisher(url, config.topic, event=EVENT_TYPE, size=config.size)
        progress = _Progress(load, opened.opened, publisher, on_progress or (lambda _: None))
        progress.start()
        try:
            try:
                published = asyncio.run(publisher.run(config.events, rate=config.rate, window=1))
            except OSError as exc:
                raise BenchError(f"cannot reach the hub at {url}: {exc}") from None
            if published.failures:
                broken = _first_broken(load, url)
                if broken is not None:
                    raise broken
            if published.refusals:
                status, body = published.refusals[0]
                message = hub_error_message(status, body.encode())
                raise BenchError(f"the hub refused event {published.published + 1}: {message}")
            _drain(load, config)
        finally:
            progress.stopping.set()
            progress.join()
        got = load.collect(timeout=3600, idle=0)
        outcome = result(config, got, published, url)
    if on_progress is not None:
        on_progress(Snapshot(opened.opened, published.published, outcome.delivered))
    return outcome
