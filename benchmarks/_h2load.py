"""A load client for HTTPS event streams: many streams over HTTP/2 or HTTP/1.1, in one process.

HTTP/2 (``h2`` package over an asyncio TLS connection, ALPN ``h2``): ``connections``
connections, each holding ``streams_per_connection`` streams, as a browser multiplexes
an origin's streams.  HTTP/1.1 (ALPN ``http/1.1``): one TLS connection per stream, as a
browser must.  Every stream is ``GET path`` and counts the ``data:`` lines it receives
(each event of the benchmark is one line of data); a stream is *open* once its first
body bytes arrived (the hub's opening ``retry:``).

Certificates are not verified: the server under test uses a throwaway one.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

__all__ = ["StreamLoad", "client_context"]

_WINDOW = 1 << 20  # a receive window large enough that flow control never paces the bench


def client_context(alpn: str) -> ssl.SSLContext:
    """A TLS client context offering only ``alpn`` and trusting any certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols([alpn])
    return context


@dataclass
class StreamLoad:
    """Streams to ``host:port`` over HTTPS; :meth:`open` them, read :attr:`delivered`."""

    host: str
    port: int
    path: str
    http2: bool
    #: ``False``: plain HTTP/1.1 (no TLS), the hub's default server.
    tls: bool = True
    opened: int = 0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(self, streams: int, streams_per_connection: int = 100) -> None:
        """Open ``streams`` streams; returns when every one has received its first bytes."""
        if self.http2:
            sizes = [streams_per_connection] * (streams // streams_per_connection)
            if streams % streams_per_connection:
                sizes.append(streams % streams_per_connection)
        else:
            sizes = [1] * streams
        target = self.opened + streams
        for size in sizes:
            self._tasks.append(asyncio.ensure_future(self._connection(size)))
            await asyncio.sleep(0)  # the connections open together, not one after another
        while self.opened < target:
            if self.errors:
                raise RuntimeError(self.errors[0])
            await asyncio.sleep(0.01)

    async def _connection(self, size: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=client_context("h2" if self.http2 else "http/1.1") if self.tls else None,
                server_hostname="localhost" if self.tls else None,
            )
        except OSError as exc:
            self.errors.append(f"connect: {exc!r}")
            return
        self._writers.append(writer)
        if self.http2:
            await self._run_h2(reader, writer, size)
        else:
            await self._run_h1(reader, writer)

    async def _run_h2(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int
    ) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.local_settings.initial_window_size = _WINDOW
        conn.initiate_connection()
        conn.increment_flow_control_window(_WINDOW * count)
        headers = [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", f"127.0.0.1:{self.port}"),
            (":path", self.path),
            ("accept", "text/event-stream"),
        ]
        for _ in range(count):
            conn.send_headers(conn.get_next_available_stream_id(), headers, end_stream=True)
        writer.write(conn.data_to_send())
        started: set[int] = set()
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        if event.stream_id not in started:
                            started.add(event.stream_id)
                            self.opened += 1
                        self.delivered += event.data.count(b"data:")
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                        self.errors.append(f"h2: {event}")
                out = conn.data_to_send()
                if out:
                    writer.write(out)
        except OSError as exc:
            self.errors.append(f"h2 connection: {exc!r}")

    async def _run_h1(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                self.errors.append(f"h1: {head[:60]!r}")
                return
            first = True
            while data := await reader.read(65536):
                if first:
                    first = False
                    self.opened += 1
                self.delivered += data.count(b"data:")
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.errors.append(f"h1 connection: {exc!r}")

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        self._tasks.clear()
        self._writers.clear()
