"""One event stream on a bare asyncio connection: the lean reader behind ``ssehub bench``.

A bench process reads hundreds of streams that each get a small chunk per
event, so the cost per chunk is what limits it.  httpx's streaming stack
(httpcore, anyio) costs several times more per chunk than the work itself; an
:class:`asyncio.Protocol` that hands bytes to h11 (the HTTP/1.1 state machine
under httpx, which does the framing: chunked bodies, connection close) and
h11's body bytes straight to a callback is lean enough.

Conventions: one ``GET`` per connection (``Connection: close`` semantics are not
needed: the stream ends when either side closes); http and https; durations
in float seconds.  :func:`read_stream` returns when the stream ends, cleanly or
not, and raises :class:`StreamRefused` for an answer other than ``200``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import h11
import httpx

__all__ = ["StreamRefused", "StreamTarget", "read_stream"]

_ERROR_BODY_LIMIT = 64 * 1024

#: Called with each body chunk of a 200 answer; returns False to close the stream.
OnChunk = Callable[[bytes], bool]


class StreamRefused(Exception):
    """The server answered with a status other than 200 (or none at all)."""

    def __init__(self, status_code: int | None, body: bytes) -> None:
        super().__init__(f"HTTP {status_code}" if status_code else "no answer")
        self.status_code = status_code
        self.body = body


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where to connect and what to ask for, from an http(s) URL."""

    host: str
    port: int
    tls: bool
    target: bytes  # path and query, as sent in the request line
    authority: str  # the Host header

    @classmethod
    def from_url(cls, url: str) -> StreamTarget:
        parsed = httpx.URL(url)
        tls = parsed.scheme == "https"
        port = parsed.port or (443 if tls else 80)
        authority = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
        return cls(parsed.host, port, tls, parsed.raw_path, authority)


class _Protocol(asyncio.Protocol):
    def __init__(self, on_chunk: OnChunk, done: asyncio.Future[None]) -> None:
        self._connection = h11.Connection(h11.CLIENT)
        self._on_chunk = on_chunk
        self._done = done
        self._transport: asyncio.Transport | None = None
        self.status_code: int | None = None
        self.error_body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def send_request(self, target: StreamTarget, headers: Sequence[tuple[str, str]]) -> None:
        request = h11.Request(
            method="GET",
            target=target.target,
            headers=[("Host", target.authority), *headers],
        )
        assert self._transport is not None
        self._transport.write(
            self._connection.send(request) + (self._connection.send(h11.EndOfMessage()) or b"")
        )

    def data_received(self, data: bytes) -> None:
        self._connection.receive_data(data)
        self._read_events()

    def eof_received(self) -> bool:
        self._connection.receive_data(b"")
        self._read_events()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.finish()

    def _read_events(self) -> None:
        try:
            while not self._done.done():
                event = self._connection.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                if isinstance(event, h11.Response):
                    self.status_code = event.status_code
                elif isinstance(event, h11.Data):
                    if self.status_code == 200:
                        if not self._on_chunk(bytes(event.data)):
                            self.finish()
                    elif len(self.error_body) < _ERROR_BODY_LIMIT:
                        self.error_body += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    self.finish()
        except h11.RemoteProtocolError:
            self.finish()

    def finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)
        if self._transport is not None:
            self._transport.close()


async def read_stream(
    target: StreamTarget,
    headers: Sequence[tuple[str, str]],
    on_chunk: OnChunk,
    *,
    connect_timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Open the stream, feed its body to ``on_chunk`` until it ends; see the module docstring.

    Raises :class:`OSError` (or :class:`TimeoutError`) when the connection
    can't be made, and :class:`StreamRefused` for an answer other than 200.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    context = (ssl_context or ssl.create_default_context()) if target.tls else None
    async with asyncio.timeout(connect_timeout):
        transport, protocol = await loop.create_connection(
            lambda: _Protocol(on_chunk, done), target.host, target.port, ssl=context
        )
    try:
        protocol.send_request(target, headers)
        await done
    finally:
        transport.close()
    if protocol.status_code != 200:
        raise StreamRefused(protocol.status_code, bytes(protocol.error_body))
