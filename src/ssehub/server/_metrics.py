"""Prometheus ``/metrics``: the hub's counters, per process and summed over workers.

One process (``ssehub serve``, a mounted hub): a custom collector reads
:class:`~ssehub.hub.HubStats` when scraped, so the hot path only bumps plain
integers.  Each app has its own registry.

Many processes (``ssehub serve --workers N``, or any server that sets
``PROMETHEUS_MULTIPROC_DIR``): prometheus-client's multiprocess mode.  Each
worker copies its plain counters into the client's memory-mapped files of
that directory (:class:`WorkerMetrics`, every :data:`SYNC_INTERVAL` seconds
and before it answers a scrape), and ``/metrics`` answers what the client's
``MultiProcessCollector`` reads from all of them:

- the counters of what each process does for its own streams (deliveries,
  replays, slow closes, write timeouts, resets, streams opened) are **summed**
  over every process that ever ran in this directory (a worker that died keeps
  its counts, so sums never go back);
- ``ssehub_open_streams`` is the sum over live workers, and
  ``ssehub_worker_open_streams{pid=…}`` the same per live worker;
- ``ssehub_events_published_total`` (and per topic) is the **largest** count of any
  process: every process hears every event on the live feed, so a sum would
  count each event once per worker.

``/metrics?scope=process`` answers this process's own counters only (the
one-process format), whichever worker took the connection.  ``/healthz`` says
the same two ways: its own ``open_streams`` and ``pid``, and ``workers`` —
live workers and their open streams summed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from prometheus_client.values import MutexValue, ValueClass
from starlette.requests import Request
from starlette.responses import Response

from ..hub import Hub, HubStats
from ._errors import ApiError

__all__ = [
    "MULTIPROC_ENV",
    "SYNC_INTERVAL",
    "HubCollector",
    "MetricsEndpoint",
    "WorkerMetrics",
    "multiprocess_dir",
]

#: The environment variable prometheus-client reads at import (per-run directory).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Seconds between two copies of a worker's counters into the shared files.
SYNC_INTERVAL = 1.0

#: ``(metric name, help, HubStats field)`` of the counters summed over processes.
_SUMMED = (
    ("ssehub_events_delivered", "Events queued to subscribers.", "delivered"),
    ("ssehub_events_replayed", "Events replayed from history on resume.", "replayed"),
    ("ssehub_slow_subscriber_closes", "Streams closed for falling behind.", "slow_closes"),
    ("ssehub_write_timeouts", "Streams closed on a blocked write.", "write_timeouts"),
    ("ssehub_cursor_resets", "Reset events sent for unusable cursors.", "resets"),
    ("ssehub_streams_opened", "Streams opened since start.", "opened"),
    ("ssehub_fanout_flushes", "Flushes of live events to their subscribers.", "flushes"),
    (
        "ssehub_fanout_write_seconds",
        "Event-loop time the flushes' writes took, from the first wake to the last write.",
        "flush_seconds",
    ),
)


def multiprocess_dir() -> str | None:
    """The multiprocess directory of this process, if prometheus-client uses one.

    Only when the variable was set before prometheus-client was imported (it
    then keeps values in that directory's files) and names a directory.
    """
    path = os.environ.get(MULTIPROC_ENV)
    if not path or not os.path.isdir(path) or ValueClass is MutexValue:
        return None
    return path


class HubCollector(Collector):
    """Exports one hub's counters and gauges (this process only)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        stats = self.hub.stats
        yield GaugeMetricFamily(
            "ssehub_open_streams", "Event streams open now.", self.hub.open_streams
        )
        yield CounterMetricFamily(
            "ssehub_events_published",
            "Events published (seen on the live feed).",
            value=stats.published,
        )
        for name, documentation, field in _SUMMED:
            yield CounterMetricFamily(name, documentation, value=getattr(stats, field))
        yield GaugeMetricFamily(
            "ssehub_event_loop_lag_seconds",
            "How late the hub's periodic tick woke, last seen (event loop lag).",
            stats.loop_lag,
        )
        per_topic = CounterMetricFamily(
            "ssehub_topic_events_published", "Events published per topic.", labels=["topic"]
        )
        for topic, value in stats.per_topic_published.items():
            per_topic.add_metric([topic], value)
        yield per_topic


class WorkerMetrics:
    """This process's share of the multiprocess files: copies ``HubStats`` into them.

    Counters are increased by what changed since the last copy; gauges are set.
    Only a process whose prometheus-client was imported with ``MULTIPROC_ENV``
    set writes files (the variable is read once, at import).
    """

    def __init__(self, hub: Hub, path: str) -> None:
        self.hub = hub
        self.path = path
        self._copied: dict[str, float] = {}
        self._counters = {field: Counter(name, doc, registry=None) for name, doc, field in _SUMMED}
        self._open = Gauge(
            "ssehub_open_streams",
            "Event streams open now (all live workers).",
            registry=None,
            multiprocess_mode="livesum",
        )
        self._open_per_worker = Gauge(
            "ssehub_worker_open_streams",
            "Event streams open now, per live worker.",
            registry=None,
            multiprocess_mode="liveall",
        )
        self._lag = Gauge(
            "ssehub_worker_event_loop_lag_seconds",
            "How late the hub's periodic tick woke, last seen, per live worker.",
            registry=None,
            multiprocess_mode="liveall",
        )
        # Named as the one-process counter, so one query serves both scopes.
        self._published = Gauge(
            "ssehub_events_published_total",
            "Events published (seen on the live feed): the largest count of any process.",
            registry=None,
            multiprocess_mode="max",
        )
        self._per_topic = Gauge(
            "ssehub_topic_events_published_total",
            "Events published per topic: the largest count of any process.",
            ["topic"],
            registry=None,
            multiprocess_mode="max",
        )

    def sync(self) -> None:
        """Copy this process's counters into the shared files now."""
        stats: HubStats = self.hub.stats
        for field, counter in self._counters.items():
            value = getattr(stats, field)
            change = value - self._copied.get(field, 0)
            if change > 0:
                counter.inc(change)
                self._copied[field] = value
        open_streams = self.hub.open_streams
        self._open.set(open_streams)
        self._open_per_worker.set(open_streams)
        self._lag.set(stats.loop_lag)
        self._published.set(stats.published)
        for topic, value in stats.per_topic_published.items():
            self._per_topic.labels(topic).set(value)

    def forget_dead(self) -> None:
        """Drop the live gauges of workers that died without saying so (SIGKILL)."""
        for name in self._files("gauge_live"):
            pid = name.rsplit("_", 1)[-1].removesuffix(".db")
            if pid.isdigit() and not _alive(int(pid)):
                mark_process_dead(int(pid), self.path)  # type: ignore[no-untyped-call]

    def summed(self) -> bytes:
        """Every process's files, merged, in the Prometheus text format."""
        self.sync()
        self.forget_dead()
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=self.path)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def workers(self) -> dict[str, Any]:
        """Live workers and their open streams, for ``/healthz``."""
        self.sync()
        self.forget_dead()
        per_pid: dict[str, int] = {}
        for metric in MultiProcessCollector.merge(self._files("gauge_liveall_")):  # type: ignore[no-untyped-call]
            if metric.name != "ssehub_worker_open_streams":
                continue
            for sample in metric.samples:
                per_pid[sample.labels.get("pid", "?")] = int(sample.value)
        return {
            "count": len(per_pid),
            "open_streams": sum(per_pid.values()),
            "open_streams_per_pid": dict(sorted(per_pid.items())),
        }

    def _files(self, prefix: str) -> list[str]:
        with os.scandir(self.path) as entries:
            return [e.path for e in entries if e.name.startswith(prefix)]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Copy every :data:`SYNC_INTERVAL` seconds; on exit, leave the live gauges."""

        async def copy_forever() -> None:
            while True:
                self.sync()
                await asyncio.sleep(SYNC_INTERVAL)

        task = asyncio.create_task(copy_forever(), name="ssehub-metrics-sync")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.sync()
            mark_process_dead(os.getpid(), self.path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MetricsEndpoint:
    """``GET /metrics`` in the Prometheus text format (``?scope=process``: this process)."""

    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HubCollector(hub))
        path = multiprocess_dir()
        #: The shared side, when prometheus-client runs in multiprocess mode.
        self.workers = WorkerMetrics(hub, path) if path else None

    async def endpoint(self, request: Request) -> Response:
        scope = request.query_params.get("scope", "all")
        if scope not in ("all", "process"):
            raise ApiError(400, "invalid_request", "scope must be all or process")
        if self.workers is None or scope == "process":
            body = generate_latest(self.registry)
        else:
            body = self.workers.summed()
        return Response(body, media_type=CONTENT_TYPE_LATEST)
