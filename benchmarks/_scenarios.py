"""The three hub scenarios, each against one running server, each returning plain figures.

- :func:`idle` — open N streams, hold them, report server RSS per stream.
- :func:`fanout` — N subscribers on one topic, K events published back to back;
  deliveries/s = N·K / (first publish → last delivery), every stream checked for 1..K.
- :func:`latency` — N subscribers, events published at a fixed rate; publish-to-receive
  latency percentiles over every delivery.

CPU percentages are of one core (100 % = one core busy for the whole window).  The load
client's CPU is its worker processes plus the publisher, so a reader can tell whether
the client, not the server, was the limit.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from benchmarks._servers import RunningServer
from ssehub.cli._bench_load import LoadClient, Measurement, publish_all
from ssehub.cli._bench_streams import cpu_seconds

__all__ = ["fanout", "idle", "latency", "percentile"]

MB = 1024 * 1024


def percentile(ordered: list[int], q: float) -> float:
    """The ``q``-quantile (0..1) of an ascending list, nearest rank; NaN when empty."""
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def _pct(cpu: float, wall: float) -> float:
    return 100.0 * cpu / wall if wall > 0 else 0.0


def _busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy so far (psutil)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


class _Window:
    """CPU use in one measurement window: server, load client, and everything else."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.server0 = server.cpu_seconds()
        self.own0 = cpu_seconds()
        self.busy0 = _busy_seconds()

    def figures(self, worker_cpu: float, wall: float, delivered: int) -> dict[str, float]:
        server_cpu = self.server.cpu_seconds() - self.server0
        client_cpu = worker_cpu + cpu_seconds() - self.own0
        others = max(0.0, _busy_seconds() - self.busy0 - server_cpu - client_cpu)
        per = 1e6 / delivered if delivered else float("nan")
        return {
            "server_cpu_s": server_cpu,
            "server_cpu_pct": _pct(server_cpu, wall),
            "server_us_per_delivery": server_cpu * per,
            "client_cpu_s": client_cpu,
            "client_cpu_pct": _pct(client_cpu, wall),
            "client_us_per_delivery": client_cpu * per,
            "others_cpu_pct": _pct(others, wall),
        }


def idle(server: RunningServer, load: LoadClient, streams: int, hold: float) -> dict[str, Any]:
    """Open ``streams`` idle streams, hold them ``hold`` seconds, weigh the server."""
    rss_base = server.rss()
    cpu0 = server.cpu_seconds()
    try:
        opened = load.open(server.endpoints, "/topics/idle", streams)
        rss_open = server.rss()
        cpu1 = server.cpu_seconds()
        time.sleep(hold)  # the hold itself is what is measured: do streams stay open?
        status = load.status()
        rss_held = server.rss()
        cpu2 = server.cpu_seconds()
    finally:
        load.close_streams()
    per_stream = (rss_held - rss_base) / opened.opened if opened.opened else float("nan")
    return {
        "streams": streams,
        "opened": opened.opened,
        "failed": opened.failed,
        "held": status["open"],
        "open_seconds": opened.seconds,
        "rss_base_mb": rss_base / MB,
        "rss_open_mb": rss_open / MB,
        "rss_held_mb": rss_held / MB,
        "rss_per_stream_kb": per_stream / 1024,
        "server_cpu_open_s": cpu1 - cpu0,
        "server_cpu_hold_s": cpu2 - cpu1,
        "client_cpu_open_s": opened.client_cpu_seconds,
        "client_cpu_open_pct": _pct(opened.client_cpu_seconds, opened.seconds),
        "zero_loss": opened.failed == 0 and status["open"] == streams,
        "errors": opened.errors + status["errors"],
        "server_exited": server.dead(),
    }


def _delivery_figures(
    got: Measurement, subscribers: int, published: int, events: int
) -> dict[str, Any]:
    expected = subscribers * events
    return {
        "expected": expected,
        "delivered": got.delivered,
        "missing": max(0, expected - got.in_order),
        "out_of_order": got.out_of_order,
        "complete_subscribers": got.complete,
        "closed_streams": got.closed,
        "published": published,
        "zero_loss": got.in_order == expected and got.out_of_order == 0 and published == events,
        "errors": got.errors,
    }


def fanout(
    server: RunningServer,
    load: LoadClient,
    subscribers: int,
    events: int,
    timeout: float,
    window: int | None = None,
    publishers: int = 1,
) -> dict[str, Any]:
    """Publish ``events`` back to back to ``subscribers`` streams of one topic.

    ``window`` bounds the publishes in flight on each publisher connection (``1``:
    each waits for the previous ``201``; ``None``: one pipelined burst).  With several
    ``publishers`` (concurrent connections) only each publisher's own order is checked.
    """
    topic = f"fanout-{subscribers}"
    try:
        opened = load.open(server.endpoints, f"/topics/{topic}", subscribers)
        cpu_window = _Window(server)
        deadline_ns = time.monotonic_ns() + int(timeout * 1e9)
        load.arm(events, latency=False, deadline_ns=deadline_ns, lanes=publishers)
        sent = asyncio.run(
            publish_all(
                server.publish_url,
                topic,
                events,
                publishers=publishers,
                window=window,
                text=server.text_publish,
            )
        )
        got = load.collect(timeout=timeout + 30)
        end_ns = got.last_delivery_ns if got.complete == opened.opened else time.monotonic_ns()
        wall = max(1e-9, (end_ns - sent.first_ns) / 1e9)
        cpu = cpu_window.figures(got.client_cpu_seconds, wall, got.delivered)
    finally:
        load.close_streams()
    figures = _delivery_figures(got, subscribers, sent.published, events)
    return {
        "subscribers": subscribers,
        "events": events,
        "publish_window": window,
        "publishers": publishers,
        "opened": opened.opened,
        "seconds": wall,
        "deliveries_per_s": got.in_order / wall,
        "publish_seconds": sent.seconds,
        **cpu,
        **figures,
        "zero_loss": figures["zero_loss"] and opened.failed == 0,
        "errors": opened.errors + figures["errors"] + sent.failures,
        "server_exited": server.dead(),
    }


#: ssehub's own account of its fan-out (``/metrics``): flushes and the loop time they took.
_HUB_COUNTERS = ("ssehub_fanout_flushes_total", "ssehub_fanout_write_seconds_total")


def _hub_counters(server: RunningServer) -> dict[str, float]:
    """ssehub's fan-out counters, summed over workers; empty for a peer."""
    try:
        answer = httpx.get(f"{server.publish_url}/metrics", timeout=5)
    except httpx.HTTPError:
        return {}
    if answer.status_code != 200:
        return {}
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name in _HUB_COUNTERS and not sample.labels:
                found[sample.name] = float(sample.value)
    return found


def _fanout_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean event-loop time per flush of live events, in the window (ssehub only)."""
    if not before or not after:
        return {}
    flushes = after[_HUB_COUNTERS[0]] - before[_HUB_COUNTERS[0]]
    seconds = after[_HUB_COUNTERS[1]] - before[_HUB_COUNTERS[1]]
    return {"flushes": flushes, "flush_ms": 1000 * seconds / flushes if flushes else float("nan")}


def latency(
    server: RunningServer,
    load: LoadClient,
    subscribers: int,
    rate: float,
    seconds: float,
    drain: float,
    publishers: int = 1,
) -> dict[str, Any]:
    """Publish at ``rate`` events/s for ``seconds`` to ``subscribers``; latency of each delivery.

    The publishers are open-loop: they keep to the rate (all together) however late
    the server's answers are, so a server that falls behind shows it as latency.
    """
    topic = f"latency-{subscribers}"
    events = max(1, round(rate * seconds))
    try:
        opened = load.open(server.endpoints, f"/topics/{topic}", subscribers)
        counters = _hub_counters(server)
        cpu_window = _Window(server)
        deadline_ns = time.monotonic_ns() + int((seconds + drain) * 1e9)
        load.arm(events, latency=True, deadline_ns=deadline_ns, lanes=publishers)
        sent = asyncio.run(
            publish_all(
                server.publish_url,
                topic,
                events,
                publishers=publishers,
                rate=rate,
                text=server.text_publish,
            )
        )
        got = load.collect(timeout=seconds + drain + 30)
        end_ns = got.last_delivery_ns if got.complete == opened.opened else time.monotonic_ns()
        wall = max(1e-9, (end_ns - sent.first_ns) / 1e9)
        cpu = cpu_window.figures(got.client_cpu_seconds, wall, got.delivered)
        fanout = _fanout_figures(counters, _hub_counters(server))
    finally:
        load.close_streams()
    ordered = sorted(got.latencies_ns)
    figures = _delivery_figures(got, subscribers, sent.published, events)
    return {
        "subscribers": subscribers,
        "rate": rate,
        "events": events,
        "publishers": publishers,
        "opened": opened.opened,
        "achieved_rate": sent.send_rate,
        "answered_seconds": sent.seconds,
        "p50_ms": percentile(ordered, 0.50) / 1e6,
        "p99_ms": percentile(ordered, 0.99) / 1e6,
        "max_ms": (ordered[-1] / 1e6) if ordered else float("nan"),
        "seconds": wall,
        **cpu,
        **fanout,
        **figures,
        "zero_loss": figures["zero_loss"] and opened.failed == 0,
        "errors": opened.errors + figures["errors"] + sent.failures,
        "server_exited": server.dead(),
    }
