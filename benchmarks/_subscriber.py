"""The lean side of the load client: many raw-socket event streams in one process.

Each stream is an :class:`asyncio.Protocol` on uvloop that sends one ``GET`` and reads
bytes.  It undoes HTTP/1.1 chunked framing, cuts the body at the last blank line
(``\\n\\n`` or ``\\r\\n\\r\\n``; CR-only line ends are not used by any server under
test) and reads only the ``data:`` lines the benchmark publishes: ``data: SEQ T_NS``,
where ``SEQ`` counts from 1 and ``T_NS`` is :func:`time.monotonic_ns` at publish
(system-wide on Linux, so comparable across processes).  Everything else (``retry:``,
``id:``, ``event:``, comments) is skipped without being parsed.

A stream is *ready* once its first complete block (the server's ``retry:``) arrives:
from then on the server has registered it and will deliver every publish.

:func:`worker_main` runs in a child process and obeys commands from a
:class:`multiprocessing.connection.Connection` (see ``benchmarks._load``).
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import re
import resource
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

__all__ = ["DATA_LINE", "StreamStats", "worker_main"]

#: The benchmark's data line: sequence number, then publish time in monotonic ns.
DATA_LINE = re.compile(rb"data: (\d+) (\d+)\r?\n")

_monotonic_ns = time.monotonic_ns


@dataclass
class StreamStats:
    """What one worker saw during one measurement, summed over its streams."""

    streams: int = 0
    delivered: int = 0
    in_order: int = 0
    out_of_order: int = 0
    complete: int = 0
    last_delivery_ns: int = 0
    closed: int = 0
    latencies_ns: bytes = b""
    cpu_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def cpu_seconds() -> float:
    """User plus system CPU seconds this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Worker:
    """The streams of one process and the measurement they take part in."""

    def __init__(self) -> None:
        self.streams: list[_Stream] = []
        self.expected = 0
        self.record_latency = False
        self.latencies = array("q")
        self.incomplete = 0
        self.all_complete = asyncio.Event()
        self.closed = 0
        self.errors: list[str] = []
        self.cpu_at_arm = 0.0
        self.lanes = 1
        self.finals = [0]
        #: Bumped by :meth:`close`, so streams closed on purpose are not counted as lost.
        self.generation = 0

    def note_error(self, text: str) -> None:
        if len(self.errors) < 5:
            self.errors.append(text)

    async def open(
        self, endpoints: list[tuple[str, int]], path: str, count: int, first: int, concurrency: int,
        timeout: float,
    ) -> dict[str, Any]:  # fmt: skip
        """Open ``count`` streams to ``path``; stream ``i`` goes to ``endpoints[i % len]``."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        started = time.monotonic()
        cpu0 = cpu_seconds()
        failed = 0
        self.errors = []
        self.closed = 0

        async def one(index: int) -> None:
            nonlocal failed
            host, port = endpoints[index % len(endpoints)]
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
            ).encode()
            async with gate:
                stream = _Stream(self, request, loop.create_future())
                try:
                    await asyncio.wait_for(
                        loop.create_connection(lambda: stream, host, port), timeout
                    )
                    await asyncio.wait_for(stream.ready, timeout)
                except (OSError, TimeoutError, ConnectionError) as exc:
                    failed += 1
                    self.note_error(f"stream {index}: {type(exc).__name__}: {exc}")
                    if stream.transport is not None:
                        stream.transport.abort()
                    return
                self.streams.append(stream)

        await asyncio.gather(*(one(first + i) for i in range(count)))
        return {
            "opened": len(self.streams),
            "failed": failed,
            "seconds": time.monotonic() - started,
            "cpu_seconds": cpu_seconds() - cpu0,
            "errors": list(self.errors),
        }

    def status(self) -> dict[str, Any]:
        live = sum(1 for s in self.streams if not s.lost)
        return {"open": live, "closed": self.closed, "cpu": cpu_seconds(), "errors": self.errors}

    def arm(self, expected: int, latency: bool, lanes: int = 1) -> None:
        """Start counting deliveries of ``data: 1 …`` to ``data: expected …``.

        With ``lanes`` publishers, publisher ``l`` sends ``l + 1``, ``l + 1 + lanes``, …
        and only the order within each lane is checked (HTTP keeps each publisher's
        order; nothing orders concurrent publishers).  A stream is complete once every
        lane reached its last number, lost events or not.
        """
        self.cpu_at_arm = cpu_seconds()
        self.errors = []
        self.lanes = lanes
        self.finals = [expected - (expected - 1 - lane) % lanes for lane in range(lanes)]
        self.expected = expected
        self.record_latency = latency
        self.latencies = array("q")
        self.all_complete = asyncio.Event()
        for stream in self.streams:
            stream.reset()
        self.incomplete = len(self.streams)
        if not self.streams:
            self.all_complete.set()

    async def measure(self, deadline_ns: int) -> StreamStats:
        """Wait until every stream got every event, or the deadline; then report."""
        cpu0 = self.cpu_at_arm
        remaining = (deadline_ns - _monotonic_ns()) / 1e9
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_complete.wait(), max(0.0, remaining))
        stats = StreamStats(streams=len(self.streams), closed=self.closed, errors=list(self.errors))
        for stream in self.streams:
            stats.delivered += stream.delivered
            stats.in_order += stream.in_order
            stats.out_of_order += stream.delivered - stream.in_order
            if stream.done_ns:
                stats.complete += 1
                stats.last_delivery_ns = max(stats.last_delivery_ns, stream.done_ns)
        stats.latencies_ns = self.latencies.tobytes()
        stats.cpu_seconds = cpu_seconds() - cpu0
        self.expected = 0
        return stats

    def close(self) -> None:
        self.generation += 1
        self.expected = 0
        for stream in self.streams:
            if stream.transport is not None:
                stream.transport.abort()
        self.streams.clear()


class _Stream(asyncio.Protocol):
    """One subscriber connection: HTTP head, chunked body, blank-line-cut events."""

    def __init__(self, worker: _Worker, request: bytes, ready: asyncio.Future[None]) -> None:
        self.worker = worker
        self.request = request
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.head: bytes | None = b""  # None once the response head is read
        self.chunked = False
        self.raw = b""  # undecoded chunked framing held back
        self.need = 0  # chunk payload bytes still to come
        self.crlf = False  # the CRLF after a chunk's payload is still to come
        self.tail = b""  # body after the last blank line
        self.lost = False
        self.generation = worker.generation
        self.reset()

    def reset(self) -> None:
        lanes = self.worker.lanes
        #: Per lane, the highest sequence number seen (lane ``l`` starts at ``l + 1``).
        self.lasts = [lane + 1 - lanes for lane in range(lanes)]
        self.delivered = 0
        self.in_order = 0
        self.done_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.generation != self.worker.generation:
            return  # closed by the load client itself
        if self.ready.done():
            self.worker.closed += 1
            if self.worker.expected and not self.done_ns:
                self.worker.note_error(f"stream closed mid-measurement: {exc!r}")
        else:
            self.ready.set_exception(ConnectionError(f"closed before the first block: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        if self.head is not None:
            data = self._read_head(data)
            if not data:
                return
        if self.chunked:
            data = self._dechunk(data)
        text = self.tail + data if self.tail else data
        lf = text.rfind(b"\n\n")
        crlf = text.rfind(b"\n\r\n")
        cut = max(lf + 2 if lf >= 0 else 0, crlf + 3 if crlf >= 0 else 0)
        if not cut:
            self.tail = text
            return
        self.tail = text[cut:]
        if not self.ready.done():
            self.ready.set_result(None)
        worker = self.worker
        if not worker.expected:
            return
        found = DATA_LINE.findall(text, 0, cut)
        if not found:
            return
        now = _monotonic_ns()
        lasts = self.lasts
        lanes = worker.lanes
        in_order = 0
        if worker.record_latency:
            append = worker.latencies.append
            for seq, sent in found:
                number = int(seq)
                lane = (number - 1) % lanes
                if number == lasts[lane] + lanes:
                    in_order += 1
                    lasts[lane] = number
                elif number > lasts[lane]:
                    lasts[lane] = number
                append(now - int(sent))
        else:
            for seq, _sent in found:
                number = int(seq)
                lane = (number - 1) % lanes
                if number == lasts[lane] + lanes:
                    in_order += 1
                    lasts[lane] = number
                elif number > lasts[lane]:
                    lasts[lane] = number
        self.delivered += len(found)
        self.in_order += in_order
        if not self.done_ns and all(map(operator.ge, lasts, worker.finals)):
            self.done_ns = now
            worker.incomplete -= 1
            if worker.incomplete <= 0:
                worker.all_complete.set()

    def _read_head(self, data: bytes) -> bytes:
        assert self.head is not None
        buf = self.head + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.head = buf
            return b""
        self.head = None
        lines = buf[:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or parts[1] != "200":
            self._fail(f"response {lines[0]!r}")
            return b""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
                self.chunked = True
        return buf[end + 4 :]

    def _dechunk(self, data: bytes) -> bytes:
        buf = self.raw + data if self.raw else data
        size = len(buf)
        pos = 0
        out: list[bytes] = []
        while pos < size:
            if self.need:
                end = pos + self.need
                if end <= size:
                    out.append(buf[pos:end])
                    self.need = 0
                    self.crlf = True
                    pos = end
                else:
                    out.append(buf[pos:])
                    self.need = end - size
                    pos = size
            elif self.crlf:
                if size - pos < 2:
                    break
                pos += 2
                self.crlf = False
            else:
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    break
                length = int(buf[pos:nl].split(b";", 1)[0], 16)
                pos = nl + 2
                if length == 0:
                    self._fail("the server ended the stream")
                    break
                self.need = length
        self.raw = buf[pos:]
        return out[0] if len(out) == 1 else b"".join(out)

    def _fail(self, reason: str) -> None:
        self.worker.note_error(reason)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()


async def _serve(conn: Connection) -> None:
    # Commands are read in a thread: the pipe stays blocking, so a large report
    # (every latency of a measurement) is sent whole, without the event loop's
    # non-blocking mode getting in the way.
    loop = asyncio.get_running_loop()
    worker = _Worker()
    measuring: asyncio.Task[None] | None = None

    async def measure(deadline_ns: int) -> None:
        conn.send(await worker.measure(deadline_ns))

    while True:
        try:
            command, args = await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):  # the coordinator is gone
            command, args = "exit", {}
        if command == "open":
            conn.send(await worker.open(**args))
        elif command == "measure":
            worker.arm(args["expected"], args["latency"], args.get("lanes", 1))
            conn.send("armed")
            measuring = asyncio.create_task(measure(args["deadline_ns"]))
        elif command == "status":
            conn.send(worker.status())
        elif command == "close":
            worker.close()
            await asyncio.sleep(0)
            conn.send({"cpu": cpu_seconds()})
        elif command == "exit":
            if measuring is not None:
                measuring.cancel()
            worker.close()
            return


def worker_main(conn: Connection) -> None:
    """Entry point of a load-client process: obey ``conn`` until told to exit."""
    import uvloop

    from benchmarks._servers import raise_nofile

    raise_nofile()
    with contextlib.suppress(EOFError, KeyboardInterrupt):
        uvloop.run(_serve(conn))
