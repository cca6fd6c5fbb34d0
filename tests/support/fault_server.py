"""A scripted, fault-injecting event-stream server on a real loopback port.

An asyncio raw TCP server in its own thread.  For every connection it reads
the request (head and ``Content-Length`` body), records it in ``requests``,
and asks the script what to do: ``script(n, request)`` returns a list of
actions for connection ``n`` (0-based).  An action is

* ``bytes``: written and drained at once;
* ``STALL``: keep the connection open and silent until the server stops or
  the client closes it (counted in ``client_disconnects``);
* ``ABORT``: reset the connection (RST) instead of closing it;
* ``Endless(chunk)``: write ``chunk`` again and again until the client leaves
  or the server stops (a body or a line that never ends);
* nothing left: the connection is closed cleanly (FIN).

:meth:`FaultServer.pause` closes the listening socket (connections are
refused, as while a server restarts); :meth:`FaultServer.resume` listens again
on the same port.  Both are safe to call from any thread.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.processes import free_port

__all__ = ["ABORT", "STALL", "Action", "Endless", "FaultServer", "Received", "event", "head"]


class _Op(enum.Enum):
    STALL = "stall"
    ABORT = "abort"


STALL = _Op.STALL
ABORT = _Op.ABORT


@dataclass(frozen=True, slots=True)
class Endless:
    """Write ``chunk`` over and over until the client leaves or the server stops."""

    chunk: bytes


Action = bytes | _Op | Endless
Script = Callable[[int, "Received"], Sequence[Action]]


@dataclass(frozen=True)
class Received:
    """One request as the server read it; header names are lower-case."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)


def head(
    status: int = 200,
    content_type: str | None = "text/event-stream",
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A response head whose body runs until the connection closes."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += ["Cache-Control: no-cache", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def event(data: str, *, id: str | None = None, event: str | None = None) -> bytes:
    """One event's bytes (single-line data)."""
    out = ""
    if event is not None:
        out += f"event: {event}\n"
    if id is not None:
        out += f"id: {id}\n"
    return (out + f"data: {data}\n\n").encode()


class FaultServer:
    """Serve ``script`` on ``127.0.0.1:port`` from a background thread."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.port = free_port()
        self.requests: list[Received] = []
        #: Stalled connections that the client closed.
        self.client_disconnects = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._stopping: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        self._call(self._setup())
        self.resume()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def pause(self) -> None:
        """Stop listening: new connections are refused until :meth:`resume`."""
        self._call(self._close_listener())

    def resume(self) -> None:
        """Listen on the same port again."""
        self._call(self._listen())

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _setup(self) -> None:
        self._stopping = asyncio.Event()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _shutdown(self) -> None:
        assert self._stopping is not None
        self._stopping.set()
        for writer in list(self._writers):
            writer.close()
        await self._close_listener()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            n = len(self.requests)
            self.requests.append(request)
            for action in self.script(n, request):
                if action is STALL:
                    await self._stall(reader)
                    return
                if action is ABORT:
                    writer.transport.abort()
                    return
                if isinstance(action, Endless):
                    assert self._stopping is not None
                    while not self._stopping.is_set():
                        writer.write(action.chunk)
                        await writer.drain()
                    return
                assert isinstance(action, bytes)
                writer.write(action)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _stall(self, reader: asyncio.StreamReader) -> None:
        """Send nothing until the server stops or the client goes away (counted)."""
        assert self._stopping is not None
        stopping = asyncio.ensure_future(self._stopping.wait())
        client_gone = asyncio.ensure_future(reader.read())
        await asyncio.wait([stopping, client_gone], return_when=asyncio.FIRST_COMPLETED)
        if client_gone.done():
            self.client_disconnects += 1
        stopping.cancel()
        client_gone.cancel()

    async def _read_request(self, reader: asyncio.StreamReader) -> Received | None:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        request_line, *header_lines = raw.decode("utf-8").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        return Received(method, target, headers, body)
