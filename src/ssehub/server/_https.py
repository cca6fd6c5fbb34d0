"""HTTPS with HTTP/2 for ``ssehub serve --certfile/--keyfile``: Hypercorn, bounded.

Hypercorn (pure Python, on python-hyper's ``h2`` and ``h11``) serves both
protocols on one TLS port, chosen by ALPN: ``h2`` for browsers, ``http/1.1``
for older clients.  It was measured against Granian before it was chosen (see
ARCHITECTURE.md): Granian was faster, but its connections are out of Python's
reach, so it can't reset one HTTP/2 stream for the hub nor count connections.

This module composes Hypercorn's own classes (``TCPServer``,
``ProtocolWrapper``, ``H2Protocol``, ``Lifespan``) into a serve loop of ssehub's;
Hypercorn itself is not patched.  It adds what the plain-HTTP server
(:mod:`._http`) gives the hub:

* **Aborts.**  Each request's scope carries ``scope["extensions"]["ssehub.abort"]``.
  On HTTP/2 it resets *that stream* (``RST_STREAM CANCEL``): its unsent bytes are
  dropped and a pending write returns, while the connection's other streams go
  on.  On HTTP/1.1 it aborts the connection.
* **Client resets.**  A ``RST_STREAM`` from the client reaches the app as
  ``http.disconnect`` at once (Hypercorn closes the stream when ``h2`` reports
  it), so the hub drops the subscriber.
* **Connection cap.**  Connections above ``max_connections`` get ``503
  too_many_connections`` (a come-back-later stream for an event-stream
  request); above ``connection_ceiling`` a new connection is closed at once.
* **Header limits.**  A request with more than ``max_header_count`` fields or
  ``max_header_bytes`` bytes of them gets ``431``; ``h11`` refuses a longer
  HTTP/1.1 head itself and ``h2`` advertises the limit (``MAX_HEADER_LIST_SIZE``).
* **Timeouts.**  The TLS handshake must end within ``header_timeout``; a
  connection with no request under way is closed after ``idle_timeout``.
* **Drain.**  On SIGTERM/SIGINT every stream is told to come back later
  (``Hub.drain``), new requests get ``503 shutting_down``, open streams get
  ``drain_timeout`` seconds to end, then every connection is closed (reset if
  its peer stopped reading) and the lifespan ends.

No hop-by-hop header is ever sent on HTTP/2 (the ``h2`` package refuses them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import h2.errors
import h2.exceptions
import priority.priority
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.lifespan import Lifespan
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.events import Closed, RawData
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.events import Body
from hypercorn.protocol.h2 import BUFFER_HIGH_WATER, H2Protocol
from hypercorn.typing import AppWrapper, ConnectionState
from hypercorn.utils import parse_socket_addr

from ._app import HubApp
from ._http import ConnectionGate, HttpLimits, refusal_app
from ._stream import ABORT_EXTENSION

__all__ = ["HttpsServer", "hypercorn_config"]

logger = logging.getLogger("ssehub.server")

_DRAIN_STEP = 0.05

#: Bytes a connection's transport may hold before a write waits for the peer.
_WRITE_HIGH_WATER = 64 * 1024


def hypercorn_config(limits: HttpLimits, *, access_log: bool) -> Config:
    """Hypercorn's settings for ``limits`` (TLS itself is set by :class:`HttpsServer`)."""
    config = Config()
    config.keep_alive_timeout = limits.idle_timeout
    config.ssl_handshake_timeout = limits.header_timeout
    config.h11_max_incomplete_size = limits.max_header_bytes
    config.h2_max_header_list_size = limits.max_header_bytes
    config.h2_max_concurrent_streams = 100  # what browsers and nginx use
    config.graceful_timeout = limits.linger
    config.include_server_header = False
    config.include_date_header = True
    config.accesslog = logging.getLogger("ssehub.access") if access_log else None
    config.errorlog = logging.getLogger("ssehub.server")
    return config


class _StreamApp:
    """The app of one HTTP/2 stream: the connection's app, with an abort of that stream."""

    __slots__ = ("abort", "inner")

    def __init__(self, inner: AppWrapper, abort: Callable[[], None]) -> None:
        self.inner = inner
        self.abort = abort

    async def __call__(self, scope: Any, receive: Any, send: Any, *spawn: Any) -> None:
        scope["extensions"][ABORT_EXTENSION] = self.abort
        await self.inner(scope, receive, send, *spawn)


class _HubH2Protocol(H2Protocol):
    """Hypercorn's HTTP/2 protocol whose streams can be reset by the app, with backpressure.

    Hypercorn's stream buffer lets a write return while the peer's flow-control
    window is shut (its "paused" signal is set by every empty read), so a stream
    whose reader stopped would buffer without end and its writes would never
    block.  Here a body write waits, once the stream holds
    ``BUFFER_HIGH_WATER`` unsent bytes, until they are sent: the hub's write
    deadline and slow-subscriber bound then apply as on HTTP/1.1.
    """

    async def stream_send(self, event: Any) -> None:
        await super().stream_send(event)
        if isinstance(event, Body):
            buffer = self.stream_buffers.get(event.stream_id)
            if buffer is not None and len(buffer.buffer) >= BUFFER_HIGH_WATER:
                await buffer.drain()  # until sent, or the stream is closed or reset

    async def _create_stream(self, request: Any) -> None:
        # Hypercorn builds the stream (and takes ``self.app``) before its first await.
        connection_app = self.app
        abort = partial(self.abort_stream, request.stream_id)
        self.app = cast(AppWrapper, _StreamApp(connection_app, abort))
        try:
            await super()._create_stream(request)
        finally:
            self.app = connection_app

    def abort_stream(self, stream_id: int) -> None:
        """Reset one stream now (``RST_STREAM CANCEL``); its unsent bytes are dropped."""
        if stream_id not in self.streams:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self.task_group.spawn(self._forget_stream, stream_id)

    async def _forget_stream(self, stream_id: int) -> None:
        buffer = self.stream_buffers.get(stream_id)
        if buffer is not None:
            await buffer.close()  # a pending write returns; the send task drops the stream
            with contextlib.suppress(priority.priority.MissingStreamError):
                self.priority.unblock(stream_id)
        await self._close_stream(stream_id)  # the app hears http.disconnect
        with contextlib.suppress(OSError):
            await self._flush()


class _HubProtocolWrapper(ProtocolWrapper):
    """Hypercorn's protocol choice (ALPN), with :class:`_HubH2Protocol` for ``h2``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if type(self.protocol) is H2Protocol:
            self.protocol = _HubH2Protocol(
                self.app,
                self.config,
                self.context,
                self.task_group,
                self.state,
                self.ssl,
                self.client,
                self.server,
                self.send,
            )


class _ConnectionApp:
    """The app of one connection: refusals (drain, cap, header limits), then the hub."""

    __slots__ = ("connection", "inner")

    def __init__(self, inner: AppWrapper, connection: _HubTCPServer) -> None:
        self.inner = inner
        self.connection = connection

    async def __call__(self, scope: Any, receive: Any, send: Any, *spawn: Any) -> None:
        connection = self.connection
        if scope["type"] == "http":
            refusal = connection.refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            scope["extensions"].setdefault(ABORT_EXTENSION, connection.abort)
        await self.inner(scope, receive, send, *spawn)


class _HubTCPServer(TCPServer):
    """One connection: Hypercorn's ``TCPServer``, counted, abortable, its writes coalesced.

    Hypercorn writes every HTTP/2 frame on its own, and each write through TLS
    costs a record and a trip through asyncio's SSL layer: a fan-out to 100
    streams of one connection would be 100 writes.  Here the bytes of one event
    loop turn are joined into one write; the writer waits (``drain``) only when
    the transport holds more than :data:`_WRITE_HIGH_WATER` bytes.
    """

    def __init__(self, owner: HttpsServer, *args: Any) -> None:
        super().__init__(*args)
        self.owner = owner
        self.over_cap = False
        self._pending: list[bytes] = []

    async def protocol_send(self, event: Any) -> None:
        if isinstance(event, RawData):
            if not self._pending:
                self.loop.call_soon(self._write_pending)
            self._pending.append(event.data)
            if self.writer.transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                try:
                    await self.writer.drain()
                except (ConnectionError, RuntimeError):
                    await self.protocol.handle(Closed())
            return
        self._write_pending()
        await super().protocol_send(event)

    async def _close(self) -> None:
        self._write_pending()
        await super()._close()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        transport = self.writer.transport
        if not transport.is_closing():
            transport.write(data)

    def refusal(self, scope: Any) -> Callable[..., Any] | None:
        """The app that refuses this request, or ``None`` to serve it."""
        gate = self.owner.gate
        limits = gate.limits
        close = scope.get("http_version") != "2"
        if gate.draining:
            return refusal_app("shutting_down", "the hub is shutting down", 2, close=close)
        if self.over_cap:
            cap = limits.max_connections
            message = f"the hub holds its limit of {cap} connections"
            return refusal_app("too_many_connections", message, 5, close=close)
        headers = scope["headers"]
        if len(headers) > limits.max_header_count:
            gate.note("too_many_headers", "refused a request: 431 too_many_headers")
            message = f"more than {limits.max_header_count} header fields"
            return _error_app(431, "too_many_headers", message, close)
        size = sum(len(name) + len(value) + 4 for name, value in headers)
        if size > limits.max_header_bytes:
            gate.note("headers_too_large", "refused a request: 431 headers_too_large")
            message = f"request head over {limits.max_header_bytes} bytes"
            return _error_app(431, "headers_too_large", message, close)
        return None

    def abort(self) -> None:
        """Reset the whole connection now (its buffered output is dropped)."""
        transport = self.writer.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        transport.abort()

    async def run(self) -> None:
        """Hypercorn's ``TCPServer.run``, with ssehub's protocol wrapper and per-connection app."""
        owner = self.owner
        owner.connections.add(self)
        try:
            admission = owner.gate.admit(len(owner.connections))
            if admission == "reset":
                self.abort()
                return
            self.over_cap = admission == "full"
            await self._serve()
        finally:
            owner.connections.discard(self)

    async def _serve(self) -> None:
        sock = self.writer.get_extra_info("socket")
        try:
            client = parse_socket_addr(sock.family, sock.getpeername())
            server = parse_socket_addr(sock.family, sock.getsockname())
            ssl_object = self.writer.get_extra_info("ssl_object")
            alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            async with TaskGroup(self.loop) as task_group:
                self._task_group = task_group
                self.protocol = _HubProtocolWrapper(
                    _ConnectionApp(self.app, self),
                    self.config,
                    self.context,
                    task_group,
                    ConnectionState(self.state),
                    ssl_object is not None,
                    client,
                    server,
                    self.protocol_send,
                    alpn or "http/1.1",
                )
                await self.protocol.initiate()
                await self.idle_task.restart(task_group, self._idle_timeout)
                await self._read_data()
        except OSError:
            pass
        finally:
            await self._close()


def _error_app(status: int, code: str, message: str, close: bool) -> Callable[..., Any]:
    body = json.dumps({"error": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app


class HttpsServer:
    """Serve ``hub_app`` over TLS on ``sock`` until SIGTERM/SIGINT, then drain."""

    def __init__(
        self,
        hub_app: HubApp,
        context: ssl.SSLContext,
        gate: ConnectionGate,
        config: Config,
        *,
        drain_timeout: float = 2.0,
    ) -> None:
        self.hub_app = hub_app
        self.ssl_context = context
        self.gate = gate
        self.config = config
        self.drain_timeout = drain_timeout
        self.connections: set[_HubTCPServer] = set()
        self.started = False
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Begin the drain (what SIGTERM does)."""
        if not self._stop.is_set():
            self.gate.draining = True
            count = self.hub_app.hub.drain()
            logger.info("draining: told %d streams to reconnect later", count)
            self._stop.set()

    async def serve(self, host: str, port: int, *, backlog: int = 4096) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        app = ASGIWrapper(cast(Any, self.hub_app))
        lifespan_state: dict[str, Any] = {}
        lifespan = Lifespan(app, self.config, loop, lifespan_state)
        lifespan_task = loop.create_task(lifespan.handle_lifespan())
        await lifespan.wait_for_startup()
        if lifespan_task.done() and lifespan_task.exception() is not None:
            raise RuntimeError("the hub failed to start") from lifespan_task.exception()
        context = WorkerContext(None)
        tasks: set[asyncio.Task[None]] = set()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            # Cancelled only at the very end of a shutdown; asyncio would log it as an error.
            with contextlib.suppress(asyncio.CancelledError):
                await _HubTCPServer(
                    self, app, loop, self.config, context, lifespan_state, reader, writer
                )

        try:
            server = await asyncio.start_server(
                accept,
                host,
                port,
                backlog=backlog,
                ssl=self.ssl_context,
                ssl_handshake_timeout=self.config.ssl_handshake_timeout,
                reuse_address=True,
            )
        except OSError as exc:
            logger.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
            lifespan_task.cancel()
            raise SystemExit(1) from None
        self.started = True
        shown = f"[{host}]" if ":" in host else host
        logger.info("ssehub serving https://%s:%d (HTTP/2 and HTTP/1.1)", shown, port)
        try:
            await self._stop.wait()
            await self._drain()
        finally:
            server.close()
            await context.terminated.set()
            await self._close_connections(tasks)
            await lifespan.wait_for_shutdown()
            lifespan_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lifespan_task

    async def _close_connections(self, tasks: set[asyncio.Task[None]]) -> None:
        """Idle connections close by themselves (``terminated``); reset those left after
        ``graceful_timeout`` seconds, then cancel what still runs."""
        timeout = self.config.graceful_timeout
        if tasks:
            await asyncio.wait(set(tasks), timeout=timeout)
        for connection in list(self.connections):
            connection.abort()
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _drain(self) -> None:
        """Give open streams ``drain_timeout`` seconds to end, looking every 50 ms."""
        hub = self.hub_app.hub
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout
        while hub.open_streams and loop.time() < deadline:  # noqa: ASYNC110 (a bounded look)
            await asyncio.sleep(_DRAIN_STEP)
        left = hub.open_streams
        if left:
            logger.info(
                "drain: dropping %d streams whose clients did not take their last bytes "
                "within %g s",
                left,
                self.drain_timeout,
            )
