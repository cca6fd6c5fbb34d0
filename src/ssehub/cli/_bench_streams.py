"""The lean side of the bench engine: many raw-socket event streams in one worker process.

Each stream is an :class:`asyncio.Protocol` (on uvloop when it is installed) that sends
one ``GET`` and reads bytes.  It undoes HTTP/1.1 chunked framing, cuts the body at the
last blank line (``\\n\\n`` or ``\\r\\n\\r\\n``; CR-only line ends are not used by any
server under test) and reads only the ``data:`` lines the bench publishes:
``data: SEQ T_NS[ PADDING]``, where ``SEQ`` counts from 1 and ``T_NS`` is
:func:`time.monotonic_ns` at publish (system-wide on Linux, so comparable across
processes).  Everything else (``retry:``, ``event:``, comments) is skipped unparsed;
with ``resume`` on, the last ``id:`` and any ``ssehub-reset`` event are noted too.

Bounds: whatever a server sends, a stream holds at most :data:`HEAD_LIMIT` bytes of
response head, :data:`CHUNK_LINE_LIMIT` bytes of a chunk-size line and ``max_event``
bytes of an unfinished event; past any of them, or on broken framing, the stream is
*broken*: one error is noted, the connection closed, and it is not reopened.

A stream is *ready* once its first complete block (the server's ``retry:``) arrives:
from then on the server has registered it and will deliver every publish.  With
``resume`` on, a stream that ends before the measurement is complete is reopened with
``Last-Event-ID``: at once if it delivered something new since it opened, else after a
backoff (0.1 s, doubling, at most 2 s); after :data:`MAX_IDLE_REOPENS` such reopens in
a row it is broken.

:func:`worker_main` runs in a child process and obeys commands from a
:class:`multiprocessing.connection.Connection` (see :mod:`._bench_load`); every command
gets exactly one reply, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import re
import resource
import ssl
import sys
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

__all__ = [
    "CHUNK_LINE_LIMIT",
    "DATA_LINE",
    "DEFAULT_MAX_EVENT",
    "HEAD_LIMIT",
    "MAX_IDLE_REOPENS",
    "StreamBroken",
    "StreamStats",
    "cpu_seconds",
    "raise_nofile",
    "worker_main",
]

#: The bench's data line: sequence number, then publish time in monotonic ns.
DATA_LINE = re.compile(rb"data: (\d+) (\d+)(?=[ \r\n])")
#: The most bytes of a response head a stream reads.
HEAD_LIMIT = 64 * 1024
#: The most bytes of a chunk-size line (hex size and extensions).
CHUNK_LINE_LIMIT = 1024
#: The most bytes of an unfinished event (a line that never ends) by default.
DEFAULT_MAX_EVENT = 4 * 1024 * 1024
#: Reopens in a row that delivered nothing new, after which a stream is broken.
MAX_IDLE_REOPENS = 5
#: The most bytes of a refusal's body (the server's error message) a stream keeps.
BODY_LIMIT = 64 * 1024
#: File descriptors asked for in every bench process.
NOFILE_TARGET = 65536

_RESET = b"event: ssehub-reset"
_monotonic_ns = time.monotonic_ns


class StreamBroken(Exception):
    """A stream was given up for good (the reason is the message); see the module docstring."""


def raise_nofile(target: int = NOFILE_TARGET) -> int:
    """Raise this process's open-file limit to ``target`` (or the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in ((target, max(target, hard)), (min(target, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            return limits[0]
        except (ValueError, OSError):
            continue
    return soft


#: Loopback source addresses streams to 127.0.0.1 are spread over (Linux routes all of
#: 127/8 to lo): each has its own ephemeral ports (about 28,000 by default), so one client
#: can hold more streams to one port than a single source address allows.
LOOPBACK_SOURCES = 4


def source_address(host: str, index: int) -> tuple[str, int] | None:
    """The local address stream ``index`` to ``host`` connects from (None: the kernel's pick)."""
    if host != "127.0.0.1" or not sys.platform.startswith("linux"):
        return None
    return (f"127.0.0.{1 + index % LOOPBACK_SOURCES}", 0)


@dataclass
class StreamStats:
    """What one worker saw during one measurement, summed over its streams.

    ``delivered`` counts every bench data line; ``in_order`` the next one expected
    in its lane; ``gaps`` those that skipped ahead (the skipped ones are lost);
    ``duplicates`` those at or below one already seen.
    """

    streams: int = 0
    delivered: int = 0
    in_order: int = 0
    out_of_order: int = 0
    gaps: int = 0
    duplicates: int = 0
    resets: int = 0
    reconnects: int = 0
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
        self.resume = False
        self.max_event = DEFAULT_MAX_EVENT
        self.last_delivery_ns = 0
        #: Bumped by :meth:`close`, so streams closed on purpose are not counted as lost.
        self.generation = 0

    def note_error(self, text: str) -> None:
        if len(self.errors) < 5:
            self.errors.append(text)

    async def open(
        self, endpoints: list[tuple[str, int]], path: str, count: int, first: int, concurrency: int,
        timeout: float, tls: bool = False, resume: bool = False,
        max_event: int = DEFAULT_MAX_EVENT,
    ) -> dict[str, Any]:  # fmt: skip
        """Open ``count`` streams to ``path``; stream ``i`` goes to ``endpoints[i % len]``."""
        gate = asyncio.Semaphore(concurrency)
        started = time.monotonic()
        cpu0 = cpu_seconds()
        failed = 0
        self.errors = []
        self.closed = 0
        self.resume = resume
        self.max_event = max_event
        context = ssl.create_default_context() if tls else None

        async def one(index: int) -> None:
            nonlocal failed
            host, port = endpoints[index % len(endpoints)]
            async with gate:
                stream = _Stream(self, host, port, path, context)
                stream.source = source_address(host, index)
                try:
                    await stream.connect(timeout)
                    await asyncio.wait_for(stream.ready, timeout)
                except StreamBroken as exc:
                    failed += 1
                    self.note_error(str(exc))
                    stream.abort()
                    return
                except (OSError, TimeoutError) as exc:
                    failed += 1
                    self.note_error(f"cannot connect: {exc or type(exc).__name__}")
                    stream.abort()
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
        return {
            "open": live,
            "closed": self.closed,
            "cpu": cpu_seconds(),
            "errors": list(self.errors),
            "delivered": sum(s.in_order + s.gaps for s in self.streams),
            "broken": sum(1 for s in self.streams if s.broken),
            "complete": sum(1 for s in self.streams if s.done_ns),
        }

    def arm(self, expected: int, latency: bool, lanes: int = 1) -> None:
        """Start counting deliveries of ``data: 1 …`` to ``data: expected …``.

        With ``lanes`` publishers, publisher ``l`` sends ``l + 1``, ``l + 1 + lanes``, …
        and only the order within each lane is checked (HTTP keeps each publisher's
        order; nothing orders concurrent publishers).  A stream is complete once every
        lane reached its last number, lost events or not, or once it is broken.
        """
        self.cpu_at_arm = cpu_seconds()
        self.errors = []
        self.lanes = lanes
        self.finals = [expected - (expected - 1 - lane) % lanes for lane in range(lanes)]
        self.expected = expected
        self.record_latency = latency
        self.latencies = array("q")
        self.all_complete = asyncio.Event()
        self.last_delivery_ns = _monotonic_ns()
        for stream in self.streams:
            stream.reset()
        self.incomplete = sum(1 for s in self.streams if not s.broken)
        if not self.incomplete:
            self.all_complete.set()

    def finished(self, stream: _Stream) -> None:
        """``stream`` is complete or broken: one fewer to wait for."""
        self.incomplete -= 1
        if self.incomplete <= 0:
            self.all_complete.set()

    async def wait(self, deadline_ns: int) -> None:
        """Until every stream got every event (or broke), or the deadline."""
        remaining = (deadline_ns - _monotonic_ns()) / 1e9
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_complete.wait(), max(0.0, remaining))

    def report(self) -> StreamStats:
        stats = StreamStats(streams=len(self.streams), closed=self.closed, errors=list(self.errors))
        for stream in self.streams:
            stats.delivered += stream.delivered
            stats.in_order += stream.in_order
            stats.out_of_order += stream.delivered - stream.in_order
            stats.gaps += stream.gaps
            stats.duplicates += stream.duplicates
            stats.resets += stream.resets
            stats.reconnects += stream.reconnects
            if stream.done_ns:
                stats.complete += 1
                stats.last_delivery_ns = max(stats.last_delivery_ns, stream.done_ns)
            elif stream.last_ns:
                stats.last_delivery_ns = max(stats.last_delivery_ns, stream.last_ns)
        stats.latencies_ns = self.latencies.tobytes()
        stats.cpu_seconds = cpu_seconds() - self.cpu_at_arm
        self.expected = 0
        return stats

    def close(self) -> None:
        self.generation += 1
        self.expected = 0
        for stream in self.streams:
            stream.abort()
        self.streams.clear()


class _Stream(asyncio.Protocol):
    """One subscriber: HTTP head, chunked body, blank-line-cut events; reopened if asked."""

    def __init__(
        self, worker: _Worker, host: str, port: int, path: str, context: ssl.SSLContext | None
    ) -> None:
        self.worker = worker
        self.host, self.port, self.path, self.context = host, port, path, context
        self.source: tuple[str, int] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.broken = False
        self.generation = worker.generation
        self.last_event_id = b""
        self.idle_reopens = 0
        self.progress_at_open = 0
        self._start_connection()
        self.reset()

    def _start_connection(self) -> None:
        self.head: bytes | None = b""  # None once the response head is read
        self.chunked = False
        self.raw = b""  # undecoded chunked framing held back
        self.need = 0  # chunk payload bytes still to come
        self.crlf = False  # the CRLF after a chunk's payload is still to come
        self.tail = b""  # body after the last blank line
        self.refused = ""  # the status line of an answer other than 200
        self.refused_length: int | None = None  # its Content-Length
        self.refused_body = b""

    def reset(self) -> None:
        lanes = self.worker.lanes
        #: Per lane, the highest sequence number seen (lane ``l`` starts at ``l + 1``).
        self.lasts = [lane + 1 - lanes for lane in range(lanes)]
        self.delivered = 0
        self.in_order = 0
        self.gaps = 0
        self.duplicates = 0
        self.resets = 0
        self.reconnects = 0
        self.done_ns = 0
        self.last_ns = 0

    def request(self) -> bytes:
        resume = f"Last-Event-ID: {self.last_event_id.decode('utf-8', 'replace')}\r\n"
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
            f"{resume if self.last_event_id else ''}\r\n"
        ).encode()

    async def connect(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(
            loop.create_connection(
                lambda: self, self.host, self.port, ssl=self.context, local_addr=self.source
            ),
            timeout,
        )

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.lost = False
        self.transport.write(self.request())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        worker = self.worker
        if self.generation != worker.generation:
            return  # closed by the load client itself
        if self.refused:
            self._refuse()
        if not self.ready.done():
            self.ready.set_exception(
                StreamBroken("the server closed the stream before its first block")
            )
            return
        worker.closed += 1
        if not worker.expected or self.done_ns or self.broken:
            return
        if worker.resume:
            progress = self.in_order + self.gaps
            productive = progress > self.progress_at_open
            self.idle_reopens = 0 if productive else self.idle_reopens + 1
            if self.idle_reopens > MAX_IDLE_REOPENS:
                self._break(f"the stream kept ending without new events ({MAX_IDLE_REOPENS} times)")
                return
            delay = 0.0 if productive else min(2.0, 0.1 * 2 ** (self.idle_reopens - 1))
            asyncio.get_running_loop().call_later(delay, self._reopen)
            return
        worker.note_error(f"stream closed mid-measurement: {exc!r}")

    def _reopen(self) -> None:
        if self.generation != self.worker.generation or not self.worker.expected:
            return
        self.reconnects += 1
        self.progress_at_open = self.in_order + self.gaps
        self._start_connection()

        async def again() -> None:
            try:
                await self.connect(30.0)
            except (OSError, TimeoutError) as exc:
                self._break(f"reopening the stream failed: {exc or type(exc).__name__}")

        task = asyncio.ensure_future(again())
        _background.add(task)
        task.add_done_callback(_background.discard)

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        if self.head is not None:
            data = self._read_head(data)
            if not data:
                return
        if self.chunked:
            data = self._dechunk(data)
            if self.broken:
                return
        if self.refused:
            self.refused_body += data
            length = self.refused_length
            if len(self.refused_body) >= (
                BODY_LIMIT if length is None else min(length, BODY_LIMIT)
            ):
                self._refuse()
            return
        text = self.tail + data if self.tail else data
        lf = text.rfind(b"\n\n")
        crlf = text.rfind(b"\n\r\n")
        cut = max(lf + 2 if lf >= 0 else 0, crlf + 3 if crlf >= 0 else 0)
        if not cut:
            if len(text) > self.worker.max_event:
                self._break(f"an event stream line or event over {self.worker.max_event:,} bytes")
                return
            self.tail = text
            return
        self.tail = text[cut:]
        if len(self.tail) > self.worker.max_event:
            self._break(f"an event stream line or event over {self.worker.max_event:,} bytes")
            return
        if not self.ready.done():
            self.ready.set_result(None)
        worker = self.worker
        if worker.resume:
            self._note_resume(text, cut)
        if not worker.expected:
            return
        found = DATA_LINE.findall(text, 0, cut)
        if not found:
            return
        now = _monotonic_ns()
        lasts = self.lasts
        lanes = worker.lanes
        in_order = gaps = 0
        record = worker.latencies.append if worker.record_latency else None
        for seq, sent in found:
            number = int(seq)
            lane = (number - 1) % lanes
            if number == lasts[lane] + lanes:
                in_order += 1
                lasts[lane] = number
            elif number > lasts[lane]:
                gaps += 1
                lasts[lane] = number
            if record is not None:
                record(now - int(sent))
        self.delivered += len(found)
        self.in_order += in_order
        self.gaps += gaps
        self.duplicates += len(found) - in_order - gaps
        self.last_ns = worker.last_delivery_ns = now
        if not self.done_ns and all(map(operator.ge, lasts, worker.finals)):
            self.done_ns = now
            worker.finished(self)

    def _note_resume(self, text: bytes, cut: int) -> None:
        """Remember the last ``id:`` before ``cut``; count reset events."""
        at = text.rfind(b"id: ", 0, cut)
        while at > 0 and text[at - 1] not in b"\r\n":
            at = text.rfind(b"id: ", 0, at)
        if at >= 0:
            end = text.find(b"\n", at)
            self.last_event_id = text[at + 4 : end].rstrip(b"\r")
        if self.worker.expected and _RESET in text:
            self.resets += text.count(_RESET, 0, cut)

    def _read_head(self, data: bytes) -> bytes:
        assert self.head is not None
        buf = self.head + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > HEAD_LIMIT:
                self._break(f"a response head over {HEAD_LIMIT:,} bytes")
            else:
                self.head = buf
            return b""
        self.head = None
        lines = buf[:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "transfer-encoding" and "chunked" in value.lower():
                self.chunked = True
            elif name == "content-length" and value.strip().isdigit():
                self.refused_length = int(value)
        if len(parts) < 2 or parts[1] != "200":
            self.refused = lines[0][:200]
            if self.refused_length == 0:
                self._refuse()
        return buf[end + 4 :]

    def _refuse(self) -> None:
        """Break on a refusal: ``HTTP STATUS BODY`` (the body as text, at most 64 KiB)."""
        status = self.refused.split(" ", 2)[1] if " " in self.refused else "?"
        body = self.refused_body[:BODY_LIMIT].decode("utf-8", "replace")
        self._break(f"HTTP {status} {body}")

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
                    if size - pos > CHUNK_LINE_LIMIT:
                        self._break("a chunk-size line that does not end")
                        return b""
                    break
                try:
                    length = int(buf[pos:nl].split(b";", 1)[0], 16)
                except ValueError:
                    self._break("a chunk-size line that is not hex")
                    return b""
                pos = nl + 2
                if length == 0:
                    if self.refused:
                        self._refuse()
                    elif self.transport is not None:
                        self.transport.close()
                    break
                self.need = length
        self.raw = buf[pos:]
        return out[0] if len(out) == 1 else b"".join(out)

    def _break(self, reason: str) -> None:
        """Give up on this stream for good: one error, the connection closed."""
        if self.broken:
            return
        self.broken = True
        self.head, self.tail, self.raw = None, b"", b""
        self.worker.note_error(reason)
        if not self.ready.done():
            self.ready.set_exception(StreamBroken(reason))
        elif self.worker.expected and not self.done_ns:
            self.worker.finished(self)
        if self.transport is not None:
            self.transport.close()


_background: set[asyncio.Future[None]] = set()


async def _collect(worker: _Worker, measuring: asyncio.Task[None], idle_ns: int | None) -> None:
    """Until ``measuring`` ends, or (``idle_ns``) no delivery came for that long from now."""
    started = _monotonic_ns()
    while not measuring.done():
        if idle_ns is not None:
            last = max(worker.last_delivery_ns, started)
            remaining = (last + idle_ns - _monotonic_ns()) / 1e9
            if remaining <= 0:
                return
            await asyncio.wait({measuring}, timeout=min(remaining, 0.1))
        else:
            await asyncio.wait({measuring})


async def _serve(conn: Connection) -> None:
    # Commands are read in a thread: the pipe stays blocking, so a large report
    # (every latency of a measurement) is sent whole, without the event loop's
    # non-blocking mode getting in the way.
    loop = asyncio.get_running_loop()
    worker = _Worker()
    measuring: asyncio.Task[None] | None = None

    while True:
        try:
            command, args = await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):  # the coordinator is gone
            command, args = "exit", {}
        if command == "open":
            conn.send(await worker.open(**args))
        elif command == "measure":
            worker.arm(args["expected"], args["latency"], args.get("lanes", 1))
            measuring = asyncio.create_task(worker.wait(args["deadline_ns"]))
            conn.send("armed")
        elif command == "collect":
            if measuring is not None:
                await _collect(worker, measuring, args.get("idle_ns"))
                measuring.cancel()
                measuring = None
            conn.send(worker.report())
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
    """Entry point of a bench worker process: obey ``conn`` until told to exit."""
    raise_nofile()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        run: Any = asyncio.run
    else:
        run = uvloop.run
    with contextlib.suppress(EOFError, KeyboardInterrupt):
        run(_serve(conn))
