"""Writing event streams to ASGI: the hub's streams and users' own generators.

Conventions:

* Headers follow the seed and HTTP/2: ``Content-Type: text/event-stream``,
  ``Cache-Control: no-cache``, ``X-Accel-Buffering: no``; never ``Connection`` or
  ``Keep-Alive`` (hop-by-hop; HTTP/2 forbids them).
* The first write happens at once (``retry:`` and the cursor ``id:``), so the
  client and every proxy on the way see the stream open.
* A hub stream is owned by the hub (:class:`~ssehub.hub.Stream`): it sequences
  the writes, stamps them with the hub's clock, applies every bound and ends
  itself.  :class:`HubStreamResponse` is a thin pump: it sends the headers,
  hands the stream one ``write`` (an ASGI ``send`` of a body chunk), and
  tells it when the client leaves (see Disconnects below).
* When the hub abandons a stream whose write is stuck (write deadline, slow
  subscriber), the connection must die at once.  ``ssehub serve`` runs
  uvicorn with a protocol that offers ``scope["extensions"]["ssehub.abort"]``
  (a TCP reset); elsewhere the hub cancels the stream's task and the ASGI
  server closes the connection as it sees fit.
* Disconnects: a server that offers ``scope["extensions"]["ssehub.disconnect"]``
  (``ssehub serve``'s HTTP/1.1) calls back when the client leaves; elsewhere a
  watcher task waits on ``receive`` for ``http.disconnect``.  The callback saves
  each idle stream a task and three coroutine frames (about 1 KB).  Such a
  server also reads no request header once the response started, so a hub
  stream then empties ``scope["headers"]``: it holds them no longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import AsyncIterable, Callable, Mapping
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..hub import HEARTBEAT, Stream
from ..protocol import ServerSentEvent, encode, encode_comment

__all__ = [
    "ABORT_EXTENSION",
    "DISCONNECT_EXTENSION",
    "SSE_HEADERS",
    "EventSourceResponse",
    "HubStreamResponse",
    "last_event_id_of",
]

logger = logging.getLogger("ssehub.server")

SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


#: The ASGI scope extension through which a server lets the hub reset a connection.
ABORT_EXTENSION = "ssehub.abort"

#: The ASGI scope extension through which a server reports the client leaving:
#: ``register(callback)``; the connection calls ``callback()`` once when it is lost.
DISCONNECT_EXTENSION = "ssehub.disconnect"


def last_event_id_of(request: Request) -> str | None:
    """The client's cursor: the ``Last-Event-ID`` header, else ``?last_event_id=``.

    The header wins: a browser sends it on every reconnect, while the query
    parameter is what the page was first loaded with.  An empty header is no
    cursor (a browser sends none before its first event), so it does not
    override the query parameter.
    """
    header = request.headers.get("last-event-id")
    if header:
        return header
    query = request.query_params.get("last_event_id")
    if query is not None:
        return query
    return header


def _header_list(headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    result = list(SSE_HEADERS)
    for name, value in (headers or {}).items():
        result.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return result


#: The request headers of a stream that no longer needs them (see HubStreamResponse).
_NO_HEADERS: tuple[tuple[bytes, bytes], ...] = ()


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _closed_by_client(stream: Stream, _watcher: object) -> None:
    stream.disconnected()


class HubStreamResponse(Response):
    """Stream a hub subscription: replay, live events, heartbeats, deadlines."""

    def __init__(self, stream: Stream, *, headers: Mapping[str, str] | None = None) -> None:
        self.stream = stream
        self.status_code = 200
        self.background = None
        self._extra_headers = headers
        self._send: Send | None = None

    async def _write(self, chunk: bytes) -> None:
        """The stream's ``write``: one ASGI send of a body chunk."""
        assert self._send is not None
        await self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self.stream
        extensions = scope.get("extensions") or {}
        abort = extensions.get(ABORT_EXTENSION)
        on_disconnect = extensions.get(DISCONNECT_EXTENSION)
        self._send = send
        watcher: asyncio.Future[None] | None = None
        if callable(on_disconnect):
            on_disconnect(stream.disconnected)
        else:
            watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
            watcher.add_done_callback(partial(_closed_by_client, stream))
        try:
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": _header_list(self._extra_headers),
                    }
                )
            except OSError:
                stream.close("disconnect")
                return  # never run: end() below releases it
            if watcher is None:
                # ssehub's own HTTP layer reads no request header once the response
                # started: let them go (a browser's, with cookies, often pass 1 KB).
                scope["headers"] = _NO_HEADERS
            await stream.run(self._write, abort if callable(abort) else None)
            gone = stream.close_reason == "disconnect" if watcher is None else watcher.done()
            if not stream.aborted and not gone:
                with contextlib.suppress(OSError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if watcher is not None:
                watcher.cancel()
            stream.end()  # a no-op unless run() never started


EventLike = ServerSentEvent | str | bytes | Mapping[str, Any]


def _encode_item(item: EventLike) -> bytes:
    if isinstance(item, ServerSentEvent):
        return encode(item)
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return encode(ServerSentEvent(data=item))
    data = item.get("data")
    if data is not None and not isinstance(data, str):
        data = json.dumps(data, ensure_ascii=False)
    return encode(
        ServerSentEvent(
            data=data,
            event=item.get("event"),
            id=None if item.get("id") is None else str(item["id"]),
            retry=item.get("retry"),
            comment=item.get("comment"),
        )
    )


class EventSourceResponse(Response):
    """Stream your own async generator as an event stream, the ssehub way.

    ``content`` yields :class:`~ssehub.protocol.ServerSentEvent`, ``str`` (one
    ``message`` event), a mapping with ``data``/``event``/``id``/``retry``
    (non-string ``data`` is sent as JSON), or pre-encoded ``bytes``.  You get the
    SSE headers, an immediate first write, heartbeat comments while the
    generator is quiet (``heartbeat_interval`` seconds, ``0`` for none),
    backpressure (the generator waits while the client is slow) and disconnect
    handling (the generator is closed — its ``finally`` runs — when the client
    leaves).  ``prelude=False`` skips the opening comment (the first write is
    then the first event).  For resume, read the cursor with :func:`last_event_id_of`, or
    pass ``content`` as a callable taking it.
    """

    def __init__(
        self,
        content: AsyncIterable[EventLike] | Callable[[str | None], AsyncIterable[EventLike]],
        *,
        request: Request | None = None,
        retry: int | None = None,
        heartbeat_interval: float = 15.0,
        headers: Mapping[str, str] | None = None,
        buffer: int = 16,
        prelude: bool = True,
    ) -> None:
        if callable(content) and not hasattr(content, "__aiter__"):
            cursor = last_event_id_of(request) if request is not None else None
            content = content(cursor)
        assert not inspect.isfunction(content)
        self.content: AsyncIterable[EventLike] = content
        self.status_code = 200
        self.background = None
        self.retry = retry
        self.heartbeat_interval = heartbeat_interval
        self._extra_headers = headers
        self._buffer = buffer
        self._prelude = prelude

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self._buffer)

        async def produce() -> None:
            try:
                async for item in self.content:
                    await queue.put(_encode_item(item))
            except Exception:
                logger.exception("event generator failed; ending the stream")
            await queue.put(None)

        producer = asyncio.create_task(produce())
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        first = encode(ServerSentEvent(retry=self.retry)) if self.retry is not None else b""
        if self._prelude:
            first += encode_comment("")
        interval = self.heartbeat_interval if self.heartbeat_interval > 0 else None
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": _header_list(self._extra_headers),
                }
            )
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, watcher}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
                )
                if watcher in done:
                    getter.cancel()
                    return
                if getter not in done:
                    getter.cancel()
                    await send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})
                    continue
                chunk = getter.result()
                if chunk is None:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
