"""The bench engine's coordinator: subscriber processes driven from here, and a publisher.

The one engine behind ``ssehub bench`` and ``python -m benchmarks.bench_hub``.
:class:`LoadClient` spawns ``procs`` worker processes (:mod:`._bench_streams`), each
holding its share of the streams, and talks to them over pipes.  Stream ``i`` goes to
endpoint ``i % len(endpoints)`` (round-robin over the nodes of a server under test).
Every reply carries the worker's CPU seconds, so the load client's own cost is reported
next to the server's.

:class:`Publisher` sends ``POST /topics/{topic}`` one after another on one keep-alive
connection, each body ``{"data": "SEQ T_NS[ PADDING]", "event": "tick"}`` with ``T_NS``
taken from :func:`time.monotonic_ns` just before the request is sent.  Of each answer it
reads the head (at most 64 KiB) and at most 64 KiB of body; a refusal keeps its body's
text (for the hub's JSON message) in :attr:`PublishReport.refusals`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import ssl
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import httpx

from ._bench_streams import BODY_LIMIT, HEAD_LIMIT, StreamStats, cpu_seconds, worker_main

__all__ = [
    "LoadClient",
    "Measurement",
    "OpenReport",
    "PublishReport",
    "Publisher",
    "publish_all",
]


@dataclass
class OpenReport:
    requested: int
    opened: int
    failed: int
    seconds: float
    client_cpu_seconds: float
    errors: list[str] = field(default_factory=list)


@dataclass
class Measurement:
    """Every worker's :class:`StreamStats` of one measurement, summed."""

    streams: int
    delivered: int
    in_order: int
    out_of_order: int
    gaps: int
    duplicates: int
    resets: int
    reconnects: int
    complete: int
    last_delivery_ns: int
    closed: int
    latencies_ns: list[int]
    client_cpu_seconds: float
    errors: list[str]

    @classmethod
    def combine(cls, parts: list[StreamStats], extra_cpu: float = 0.0) -> Measurement:
        latencies: list[int] = []
        for part in parts:
            if part.latencies_ns:
                latencies.extend(memoryview(part.latencies_ns).cast("q").tolist())
        return cls(
            streams=sum(p.streams for p in parts),
            delivered=sum(p.delivered for p in parts),
            in_order=sum(p.in_order for p in parts),
            out_of_order=sum(p.out_of_order for p in parts),
            gaps=sum(p.gaps for p in parts),
            duplicates=sum(p.duplicates for p in parts),
            resets=sum(p.resets for p in parts),
            reconnects=sum(p.reconnects for p in parts),
            complete=sum(p.complete for p in parts),
            last_delivery_ns=max((p.last_delivery_ns for p in parts), default=0),
            closed=sum(p.closed for p in parts),
            latencies_ns=latencies,
            client_cpu_seconds=sum(p.cpu_seconds for p in parts) + extra_cpu,
            errors=[e for p in parts for e in p.errors][:5],
        )


class LoadClient:
    """Worker processes holding event streams; use as a context manager.

    Its methods may be called from two threads (a progress display asks for
    :meth:`status` while another thread waits in :meth:`collect`): each
    question and its answers are taken under one lock.
    """

    def __init__(self, procs: int = 1) -> None:
        self._lock = threading.Lock()
        ctx = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        for _ in range(max(1, procs)):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def procs(self) -> int:
        return len(self._conns)

    def _recv(self, conn: Connection, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise TimeoutError(f"a load-client worker did not answer within {timeout:.0f} s")
        return conn.recv()

    def _ask_all(self, messages: list[tuple[str, dict[str, Any]]], timeout: float) -> list[Any]:
        with self._lock:
            for conn, message in zip(self._conns, messages, strict=True):
                conn.send(message)
            deadline = time.monotonic() + timeout
            return [self._recv(c, max(0.1, deadline - time.monotonic())) for c in self._conns]

    def open(
        self,
        endpoints: list[tuple[str, int]],
        path: str,
        count: int,
        *,
        concurrency: int = 100,
        timeout: float = 30.0,
        tls: bool = False,
        resume: bool = False,
    ) -> OpenReport:
        """Open ``count`` streams to ``path`` and wait until each got its first block.

        ``resume``: reopen a stream that ends mid-measurement with ``Last-Event-ID``
        (see :mod:`._bench_streams`); ``tls``: https.
        """
        k = self.procs
        shares = [count // k + (1 if w < count % k else 0) for w in range(k)]
        firsts = [sum(shares[:w]) for w in range(k)]
        per_worker = max(1, concurrency // k)
        started = time.monotonic()
        replies = self._ask_all(
            [
                ("open", {"endpoints": endpoints, "path": path, "count": share, "first": first,
                          "concurrency": per_worker, "timeout": timeout, "tls": tls,
                          "resume": resume})
                for share, first in zip(shares, firsts, strict=True)
            ],
            timeout=timeout + count / 50 + 30,
        )  # fmt: skip
        return OpenReport(
            requested=count,
            opened=sum(r["opened"] for r in replies),
            failed=sum(r["failed"] for r in replies),
            seconds=time.monotonic() - started,
            client_cpu_seconds=sum(r["cpu_seconds"] for r in replies),
            errors=[e for r in replies for e in r["errors"]][:5],
        )

    def status(self) -> dict[str, Any]:
        """Stream counts (open, closed, broken), deliveries so far, CPU seconds, errors."""
        replies = self._ask_all([("status", {})] * self.procs, timeout=30)
        return {
            "open": sum(r["open"] for r in replies),
            "closed": sum(r["closed"] for r in replies),
            "broken": sum(r["broken"] for r in replies),
            "complete": sum(r["complete"] for r in replies),
            "delivered": sum(r["delivered"] for r in replies),
            "cpu": sum(r["cpu"] for r in replies),
            "errors": [e for r in replies for e in r["errors"]][:5],
        }

    def arm(self, expected: int, *, latency: bool, deadline_ns: int, lanes: int = 1) -> None:
        """Make every worker count events ``1..expected`` until all arrived or ``deadline_ns``.

        ``lanes`` is the number of publishers (see ``_Worker.arm``).
        """
        args = {"expected": expected, "latency": latency, "deadline_ns": deadline_ns}
        message = ("measure", {**args, "lanes": lanes})
        replies = self._ask_all([message] * self.procs, timeout=30)
        if any(r != "armed" for r in replies):
            raise RuntimeError(f"a load-client worker refused to measure: {replies!r}")

    def collect(self, timeout: float, idle: float | None = None) -> Measurement:
        """Wait for every worker's report of the armed measurement.

        A worker reports once its streams are complete (or broken), at the armed
        deadline, or (``idle`` seconds) once no delivery came for that long.
        """
        args = {"idle_ns": None if idle is None else int(idle * 1e9)}
        parts: list[StreamStats] = self._ask_all([("collect", args)] * self.procs, timeout)
        return Measurement.combine(parts)

    def close_streams(self) -> None:
        self._ask_all([("close", {})] * self.procs, timeout=60)

    def shutdown(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(("exit", {}))
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._conns.clear()
        self._procs.clear()


@dataclass
class PublishReport:
    """``published`` events answered ``201``; times are :func:`time.monotonic_ns`."""

    published: int
    first_ns: int  # just before the first request was written
    sent_ns: int  # just after the last request was written
    last_ns: int  # once the last answer was read
    failures: list[str]
    cpu_seconds: float
    #: The first refused publishes: (status, body text, at most 64 KiB).
    refusals: list[tuple[int, str]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(1e-9, (self.last_ns - self.first_ns) / 1e9)

    @property
    def send_rate(self) -> float:
        """Requests written per second (what an open-loop publisher kept to)."""
        return self.published / max(1e-9, (self.sent_ns - self.first_ns) / 1e9)


class Publisher:
    """Numbered publishes to one topic, in order, on one keep-alive connection.

    Requests are HTTP/1.1-pipelined: up to ``window`` are in flight at once (``None``:
    no limit), which every server under test answers in order, one at a time.
    ``window=1`` waits for each ``201`` before the next request; no limit with a
    ``rate`` is an open-loop publisher (a server that falls behind does not slow it
    down, so its backlog shows in the latency instead of being hidden); no limit
    and no rate is a burst.  httpx cannot pipeline, hence the hand-made requests.
    """

    def __init__(
        self, base_url: str, topic: str, event: str = "tick", size: int = 0, *, text: bool = False
    ) -> None:
        url = httpx.URL(base_url)
        self.tls = url.scheme == "https"
        self.host = url.host
        self.port = url.port or (443 if self.tls else 80)
        self.path = f"{url.raw_path.decode('ascii').rstrip('/')}/topics/{topic}"
        self.event = event
        self.size = size
        #: Plain-text bodies (``?event=`` names the type) instead of JSON.
        self.text = text
        #: Publishes answered 201 so far (for a progress display).
        self.accepted = 0

    def _request(self, seq: int) -> bytes:
        data = f"{seq} {time.monotonic_ns()}"
        if self.size > len(data) + 1:
            data = f"{data} {'x' * (self.size - len(data) - 1)}"
        if self.text:
            body, kind, path = data.encode(), "text/plain", f"{self.path}?event={self.event}"
        else:
            body = json.dumps({"data": data, "event": self.event}).encode()
            kind, path = "application/json", self.path
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def run(
        self,
        count: int,
        *,
        rate: float | None = None,
        window: int | None = None,
        lane: int = 0,
        lanes: int = 1,
        start_ns: int | None = None,
    ) -> PublishReport:
        """Publish ``1..count``: at ``rate`` events/s if given, else as fast as allowed.

        As publisher ``lane`` of ``lanes``, publish only ``lane + 1``, ``lane + 1 + lanes``, …
        Event ``seq`` is due at ``start_ns + (seq - 1) / rate`` (``start_ns``: now).
        """
        cpu0 = cpu_seconds()
        failures: list[str] = []
        refusals: list[tuple[int, str]] = []
        context = ssl.create_default_context() if self.tls else None
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=context, limit=HEAD_LIMIT
        )
        self.accepted = 0
        slots = asyncio.Semaphore(window) if window else None
        interval = 1e9 / rate if rate else 0.0
        first = time.monotonic_ns() if start_ns is None else start_ns
        sent_ns = first
        answered = accepted = 0

        seqs = range(lane + 1, count + 1, lanes)

        async def send() -> None:
            nonlocal sent_ns
            for seq in seqs:
                if interval:
                    wait = (first + (seq - 1) * interval - time.monotonic_ns()) / 1e9
                    if wait > 0:
                        await asyncio.sleep(wait)
                if slots is not None:
                    await slots.acquire()
                writer.write(self._request(seq))
                await writer.drain()
            sent_ns = time.monotonic_ns()

        async def receive() -> None:
            nonlocal answered, accepted
            for seq in seqs:
                head = await reader.readuntil(b"\r\n\r\n")
                status, length = _status_and_length(head)
                if length > BODY_LIMIT:
                    raise ValueError(f"an answer of {length:,} bytes (more than {BODY_LIMIT:,})")
                body = await reader.readexactly(length)
                if status == 201:
                    accepted += 1
                    self.accepted = accepted
                else:
                    failures.append(f"publish {seq}: HTTP {status}")
                    if len(refusals) < 5:
                        refusals.append((status, body.decode("utf-8", "replace")))
                answered += 1
                if slots is not None:
                    slots.release()

        try:
            await asyncio.wait_for(asyncio.gather(send(), receive()), max(60.0, len(seqs)))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            failures.append(f"publish {answered + 1}: {type(exc).__name__}: {exc}")
        except asyncio.LimitOverrunError:
            failures.append(f"publish {answered + 1}: an answer head over {HEAD_LIMIT:,} bytes")
        finally:
            writer.close()
        last = time.monotonic_ns()
        return PublishReport(
            accepted, first, sent_ns, last, failures[:5], cpu_seconds() - cpu0, refusals
        )


async def publish_all(
    base_url: str,
    topic: str,
    count: int,
    *,
    publishers: int = 1,
    window: int | None = None,
    rate: float | None = None,
    text: bool = False,
) -> PublishReport:
    """``count`` numbered events from ``publishers`` concurrent connections, one lane each.

    With a ``rate`` (events/s, all publishers together) the publishers are open-loop
    and share one schedule.
    """
    start_ns = time.monotonic_ns() + 20_000_000  # every connection is open by then
    reports = await asyncio.gather(
        *(
            Publisher(base_url, topic, text=text).run(
                count, rate=rate, window=window, lane=lane, lanes=publishers, start_ns=start_ns
            )
            for lane in range(publishers)
        )
    )
    return PublishReport(
        published=sum(r.published for r in reports),
        first_ns=min(r.first_ns for r in reports),
        sent_ns=max(r.sent_ns for r in reports),
        last_ns=max(r.last_ns for r in reports),
        failures=[f for r in reports for f in r.failures][:5],
        cpu_seconds=reports[0].cpu_seconds,
        refusals=[f for r in reports for f in r.refusals][:5],
    )


def _status_and_length(head: bytes) -> tuple[int, int]:
    """Status code and ``Content-Length`` of a response head (``ValueError`` if absent)."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return status, int(value)
    raise ValueError(f"publish answer without Content-Length: {lines[0]!r}")
