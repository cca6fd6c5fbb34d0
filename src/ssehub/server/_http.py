"""Bounded HTTP/1.1 for ``ssehub serve``: uvicorn's httptools protocol, with limits.

uvicorn accepts a protocol *class* (``uvicorn.Config(http=...)``); this module
subclasses its ``HttpToolsProtocol`` (llhttp, the fastest parser uvicorn has) and
adds what llhttp and uvicorn leave open to a hostile client:

* **Header size and count.**  The request line and headers of one request may
  take ``max_header_bytes`` (counted as they arrive, before llhttp buffers them)
  and ``max_header_count`` fields; above either the answer is ``431``.  Input
  llhttp cannot parse gets ``400``.  Both are JSON and close the connection.
* **Header timeout.**  A request's headers must be complete within
  ``header_timeout`` seconds of the connection opening (or of the first byte of
  a later request on a kept-alive connection): a slowloris client gets ``408``,
  a connection that never sent a byte is closed.
* **Idle timeout.**  A kept-alive connection with no request is closed after
  ``idle_timeout`` seconds.
* **Connection cap.**  Every connection counts (streams, requests, idle ones).
  Above ``max_connections`` a request is answered ``503 too_many_connections``;
  above ``connection_ceiling`` (kept below the process's descriptor limit, see
  :func:`plan_connection_limits`) a new connection is reset at once, so the
  process never runs out of descriptors.
* **Drain.**  While the server drains (:attr:`ConnectionGate.draining`) every
  new request is answered ``503 shutting_down``.
* **Real aborts.**  ``transport.close()`` waits for the write buffer to drain,
  which a client that stopped reading never lets happen.  A connection closed
  by this module is reset (``SO_LINGER`` 0, then ``abort()``) when it is not
  gone ``linger`` seconds later.  Each request's scope carries
  ``scope["extensions"]["ssehub.abort"]``: a callable (no arguments) that
  resets the connection at once and marks the response as abandoned on purpose,
  so nothing is logged as an application error.  It also carries
  ``scope["extensions"]["ssehub.disconnect"]``: ``register(callback)`` has the
  connection call ``callback()`` when the client leaves, so a stream needs no
  task of its own waiting on ``receive`` for ``http.disconnect``.

Error bodies follow the house convention ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import random
import socket
import struct
import termios
import time
import weakref
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import httptools
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from ._come_back import accept_of, come_back_later, wants_only_event_stream
from ._stream import ABORT_EXTENSION, DISCONNECT_EXTENSION, SSE_HEADERS

__all__ = [
    "ABORT_EXTENSION",
    "ConnectionGate",
    "HttpLimits",
    "WorkerHttpProtocol",
    "bind_worker_gate",
    "bounded_protocol",
    "open_descriptor_count",
    "plan_connection_limits",
    "refusal_app",
]

logger = logging.getLogger("ssehub.server")


#: Descriptors kept free for the process itself (store files, Redis, tailed files, logs).
DESCRIPTOR_RESERVE = 64

#: Local addresses whose tuple connections share (see ConnectionGate.shared_address).
MAX_SHARED_ADDRESSES = 64

_NO_LINGER = struct.pack("ii", 1, 0)

#: A connection's header list between two requests (uvicorn makes a new one per request).
_NO_HEADERS: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The bounds of the HTTP layer.  Durations are float seconds, sizes bytes."""

    #: Connections served at once; requests on connections above it get 503.
    max_connections: int = 20_000
    #: Connections accepted at all; above it a new connection is reset at once.
    connection_ceiling: int = 25_000
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    header_timeout: float = 10.0
    idle_timeout: float = 5.0
    #: How long a closed connection may wait for its peer to take the last bytes.
    linger: float = 1.0


def open_descriptor_count() -> int:
    """How many file descriptors this process has open now."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 0


def plan_connection_limits(
    max_connections: int, descriptor_limit: int, descriptors_open: int
) -> tuple[int, int]:
    """The connection cap and ceiling that fit ``descriptor_limit`` (``RLIMIT_NOFILE``).

    Returns ``(cap, ceiling)``: ``cap`` is ``max_connections`` unless the
    descriptors cannot hold it, ``ceiling`` leaves room above the cap for 503
    answers (a quarter of the cap, at least 64) within the same budget.  The
    budget keeps :data:`DESCRIPTOR_RESERVE` descriptors for the process itself.
    """
    budget = max(2, descriptor_limit - descriptors_open - DESCRIPTOR_RESERVE)
    cap = max(1, min(max_connections, budget * 4 // 5))
    ceiling = max(cap + 1, min(budget, cap + max(64, cap // 4)))
    return cap, ceiling


class ConnectionGate:
    """The state every connection of one server shares: limits, drain, refusal counts.

    Refusals are logged once per kind, then at most every ``log_interval``
    seconds with a count, so a flood cannot flood the log.
    """

    def __init__(
        self,
        limits: HttpLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        log_interval: float = 10.0,
    ) -> None:
        self.limits = limits
        self.draining = False
        self.refused: dict[str, int] = {}
        self._clock = clock
        self._log_interval = log_interval
        self._logged: dict[str, tuple[float, int]] = {}
        self._addresses: dict[tuple[str, int], tuple[str, int]] = {}

    def shared_address(self, address: tuple[str, int] | None) -> tuple[str, int] | None:
        """The one tuple equal to ``address`` that every connection to it shares.

        uvicorn makes each connection its own ``(host, port)`` of the local end
        (``scope["server"]``), about 140 bytes held for the connection's life,
        though a server listens on few addresses.  At most
        :data:`MAX_SHARED_ADDRESSES` are kept; others are returned as given.
        """
        if address is None:
            return None
        known = self._addresses.get(address)
        if known is not None:
            return known
        if len(self._addresses) < MAX_SHARED_ADDRESSES:
            self._addresses[address] = address
        return address

    def admit(self, count: int) -> str:
        """A new connection, ``count`` open with it: ``"ok"``, ``"full"`` (its requests get
        503 ``too_many_connections``) or ``"reset"`` (over the ceiling: close it at once)."""
        limits = self.limits
        if count > limits.connection_ceiling:
            self.note(
                "reset",
                f"{count} connections: over the ceiling of {limits.connection_ceiling}; "
                "resetting new connections",
            )
            return "reset"
        if count > limits.max_connections:
            self.note(
                "full",
                f"connection limit of {limits.max_connections} reached; "
                "answering 503 too_many_connections",
            )
            return "full"
        return "ok"

    def note(self, kind: str, message: str) -> None:
        """Count one refusal of ``kind``; log ``message`` (with the count) now and then."""
        count = self.refused[kind] = self.refused.get(kind, 0) + 1
        now = self._clock()
        last = self._logged.get(kind)
        if last is None or now - last[0] >= self._log_interval:
            since = count - (last[1] if last else 0)
            logger.warning("%s (%d since the last report)", message, since)
            self._logged[kind] = (now, count)


class _Refusal(Exception):
    """Raised inside a parser callback to answer the request with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


_PHRASES = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def _raw_error(status: int, code: str, message: str) -> bytes:
    """A whole ``Connection: close`` JSON error response, written outside any ASGI cycle."""
    body = json.dumps({"error": code, "message": message}).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, _PHRASES.get(status, b"Error")),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


_RNG = random.Random()


def _stream_headers(body: bytes, close: bool) -> list[tuple[bytes, bytes]]:
    headers = [*SSE_HEADERS, (b"content-length", str(len(body)).encode())]
    return [*headers, (b"connection", b"close")] if close else headers


def refusal_app(
    code: str, message: str, retry_after: int, *, close: bool = True
) -> Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Any]:
    """An ASGI app refusing every request with ``503 code`` (JSON, ``Retry-After``).

    An event-stream request gets a come-back-later stream instead (see
    :mod:`._come_back`).  ``close`` adds ``Connection: close`` (HTTP/1.1 only:
    HTTP/2 forbids hop-by-hop headers).
    """
    body = json.dumps({"error": code, "message": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))

    async def app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "http" and wants_only_event_stream(accept_of(scope["headers"])):
            # A browser's EventSource would stop for good on a 503 (see _come_back).
            stream = come_back_later(503, code, message, retry_after, _RNG)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": _stream_headers(stream, close),
                }
            )
            await send({"type": "http.response.body", "body": stream, "more_body": False})
            return
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app


#: Requests whose response may be a long stream: their head goes out at once.
_STREAMED_METHODS = frozenset(("GET", "HEAD"))


class _OneWrite:
    """A request's view of its transport that sends the response head with the body.

    uvicorn writes a response's head when the app sends ``http.response.start``
    and its body on ``http.response.body``: two ``send`` calls, two TCP segments
    for an answer such as a publish's ``201``.  This holds the first write and
    sends it joined with the next one, or on its own at the end of the loop's
    current iteration — so nothing waits for longer than that.  Everything else
    is the transport's.  Used for requests that are not streams (a publish).
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self._held = b""  # the head went out: later writes pass straight through
        self._transport.write(held + data if held else data)

    def flush(self) -> None:
        held = self._held
        if held:
            self._held = b""
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _LeanEvent:
    """The part of :class:`asyncio.Event` uvicorn uses — ``set``, ``clear``,
    ``is_set``, ``wait`` — in a slotted object whose waiters exist only while
    someone waits.

    uvicorn gives each connection two events (flow control, and the request
    cycle's ``message_event``) and an idle stream waits on neither.  An
    ``asyncio.Event`` is an instance dict and an empty ``deque`` of waiters
    (about 750 bytes); this is 48 bytes until a coroutine waits.  Same
    semantics: ``set`` wakes every waiter, and a woken waiter returns ``True``
    even if the event was cleared before it ran.
    """

    __slots__ = ("_value", "_waiters")

    def __init__(self, is_set: bool = False) -> None:
        self._value = is_set
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        waiters = self._waiters
        waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            if waiter in waiters:
                waiters.remove(waiter)


class _LeanPipeline(list[Any]):
    """uvicorn's queue of pipelined requests as a list: an empty ``deque`` is ~600 bytes.

    uvicorn only calls ``appendleft``, ``pop`` (the right end: first in, first
    out) and ``bool`` on it, and it almost always stays empty.
    """

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


class _AbortCycle:
    """``scope["extensions"]["ssehub.abort"]`` of one request: abandon its response
    on purpose and reset the connection (:meth:`BoundedHttpProtocol._abort_request`).

    One small object per request, held as long as its stream: a ``partial`` of a
    bound method is three objects.  It holds its cycle weakly (see where it is made).
    """

    __slots__ = ("_cycle", "_protocol")

    def __init__(
        self, protocol: BoundedHttpProtocol, cycle: weakref.ref[RequestResponseCycle]
    ) -> None:
        self._protocol = protocol
        self._cycle = cycle

    def __call__(self) -> None:
        self._protocol._abort_request(self._cycle)


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of :class:`HttpLimits`.

    Use :func:`bounded_protocol` to get a subclass bound to one
    :class:`ConnectionGate`; pass that to ``uvicorn.Config(http=...)``.
    """

    gate: ClassVar[ConnectionGate]

    # Slots keep uvicorn's attributes in their small key-sharing dict: one more
    # attribute there would cost every open stream about 1.3 KB.
    __slots__ = (
        "_aborted",
        "_app",
        "_header_bytes",
        "_header_count",
        "_header_tail",
        "_header_timer",
        "_in_headers",
        "_limits",
        "_linger_timer",
        "_on_lost",
        "_over_cap",
        "_refused",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = self.gate.limits
        self._app = self.app
        self._in_headers = True  # between requests or reading a request's head
        self._header_bytes = 0
        self._header_tail = b""
        self._header_count = 0
        self._header_timer: TimerHandle | None = None
        self._linger_timer: TimerHandle | None = None
        self._over_cap = False
        self._refused = False
        self._aborted = False
        self._on_lost: Callable[[], None] | None = None
        self.pipeline = _LeanPipeline()  # type: ignore[assignment]

    # -- connection life -----------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.server = self.gate.shared_address(self.server)  # type: ignore[arg-type]
        writable = _LeanEvent(self.flow._is_writable_event.is_set())
        self.flow._is_writable_event = writable  # type: ignore[assignment]
        admission = self.gate.admit(len(self.connections))
        if admission == "reset":
            self._refused = True
            self.abort()
            return
        self._over_cap = admission == "full"
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost()

    def _watch_disconnect(self, callback: Callable[[], None]) -> None:
        """``scope["extensions"]["ssehub.disconnect"]``: call ``callback`` when the client goes."""
        self._on_lost = callback

    def abort(self) -> None:
        """Reset the connection now (RST): buffered output is dropped, memory returns."""
        if self._aborted:
            return
        self._aborted = True
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
        self.transport.abort()

    def close(self) -> None:
        """Close after what is buffered, but reset if the peer has not taken it in ``linger``."""
        if not self.transport.is_closing():
            self.transport.close()
        if self._linger_timer is None:
            self._linger_timer = self.loop.call_later(self._limits.linger, self.abort)

    def _abort_request(self, ref: weakref.ref[RequestResponseCycle]) -> None:
        """The ``ssehub.abort`` extension: the app abandons its request's cycle on purpose."""
        cycle = ref()
        if cycle is not None:  # else the request is over and forgotten: nothing to abandon
            self._abort_cycle(cycle)

    def _abort_cycle(self, cycle: RequestResponseCycle) -> None:
        cycle.disconnected = True  # uvicorn then logs nothing and ignores further sends
        cycle.message_event.set()
        self.abort()

    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.close()
        else:
            self.cycle.keep_alive = False

    def pending_output(self) -> int:
        """Bytes written to this connection that its peer has not taken yet.

        The transport's buffer plus the kernel's send queue (``SIOCOUTQ``, Linux).
        """
        pending = 0 if self._aborted else self.transport.get_write_buffer_size()
        sock = self.transport.get_extra_info("socket")
        if sock is not None and not self._aborted:
            with contextlib.suppress(OSError, ValueError):
                queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
                pending += struct.unpack("i", queued)[0]
        return pending

    def busy(self) -> bool:
        """Whether a response is under way or its last bytes are not taken yet."""
        if self._aborted:
            return False
        cycle = self.cycle
        return (cycle is not None and not cycle.response_complete) or self.pending_output() > 0

    def drop(self) -> None:
        """End the connection at the end of a drain, its response abandoned on purpose.

        A connection whose peer has taken everything is closed; one holding
        bytes its peer never took (a client that stopped reading) is reset.
        """
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if self.pending_output() > 0:
            self.abort()
        else:
            self.close()

    def timeout_keep_alive_handler(self) -> None:
        self.close()

    def on_response_complete(self) -> None:
        self._on_lost = None
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle, waiting for another request
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = self.loop.call_later(
                self._limits.idle_timeout, self.timeout_keep_alive_handler
            )

    # -- reading requests ----------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._in_headers:
            if self._header_timer is None:
                self._arm_header_timer()
            if not self._count_header_bytes(data):
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            # else: served as plain HTTP (``ssehub serve`` runs with ws="none")
        except httptools.HttpParserCallbackError as exc:
            reason = exc.__context__
            if isinstance(reason, _Refusal):
                self._refuse(reason.status, reason.code, reason.message)
            else:
                self._refuse(400, "bad_request", "invalid HTTP request")
        except httptools.HttpParserError as exc:
            self._refuse(400, "bad_request", f"invalid HTTP request: {exc}")

    def _count_header_bytes(self, data: bytes) -> bool:
        """Add ``data`` to the head being read; refuse (and return False) over the limit."""
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            used = self._header_bytes + end + 4
        else:
            tail = self._header_tail
            joint = (tail + data[:3]).find(b"\r\n\r\n") if tail else -1
            used = self._header_bytes + (joint - len(tail) + 4 if joint >= 0 else len(data))
        limit = self._limits.max_header_bytes
        if used > limit:
            self._refuse(431, "headers_too_large", f"request head over {limit} bytes")
            return False
        self._header_bytes = used
        self._header_tail = (self._header_tail + data)[-3:]
        return True

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._limits.max_header_count:
            limit = self._limits.max_header_count
            raise _Refusal(431, "too_many_headers", f"more than {limit} header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        if self.gate.draining:
            self.app = refusal_app("shutting_down", "the hub is shutting down", 2)
        elif self._over_cap:
            cap = self._limits.max_connections
            self.app = refusal_app(
                "too_many_connections", f"the hub holds its limit of {cap} connections", 5
            )
        try:
            super().on_headers_complete()
        finally:
            self.app = self._app
        # uvicorn holds the request's header list twice, here and in the scope; only
        # the scope's is read again (a hub stream lets even that go, see _stream).
        self.headers = _NO_HEADERS  # type: ignore[assignment]
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            # Nothing set it yet (no body was parsed).
            cycle.message_event = _LeanEvent()  # type: ignore[assignment]
            scope = cast(dict[str, Any], self.scope)
            # The cycle holds the scope: a strong reference back would make every
            # request a reference cycle, left for the garbage collector to find.
            abort = _AbortCycle(self, weakref.ref(cycle))
            scope.setdefault("extensions", {})[ABORT_EXTENSION] = abort
            scope["extensions"][DISCONNECT_EXTENSION] = self._watch_disconnect
            if scope["method"] not in _STREAMED_METHODS:
                cycle.transport = cast(asyncio.Transport, _OneWrite(self.transport, self.loop))

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_headers = True
        self._header_bytes = 0
        self._header_tail = b""
        self._header_count = 0

    # -- refusing ------------------------------------------------------------

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` with a JSON error if no response is under way, then close."""
        if self._refused:
            return
        self._refused = True
        self._cancel_header_timer()
        self._unset_keepalive_if_required()
        self.gate.note(code, f"refused a request: {status} {code}")
        if self.cycle is not None and not self.cycle.response_complete:
            self._abort_cycle(self.cycle)  # garbage pipelined behind a live response
            return
        if not self.transport.is_closing():
            self.transport.write(_raw_error(status, code, message))
        self.close()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(
            self._limits.header_timeout, self._on_header_timeout
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self._header_bytes == 0:
            self._refused = True
            self.close()  # never sent a byte: nobody to answer
            return
        timeout = self._limits.header_timeout
        self._refuse(408, "request_timeout", f"request head not received within {timeout:g} s")


def bounded_protocol(gate: ConnectionGate) -> type[BoundedHttpProtocol]:
    """A :class:`BoundedHttpProtocol` subclass whose connections share ``gate``."""
    shared = gate

    class Bound(BoundedHttpProtocol):
        __slots__ = ()
        gate = shared

    return Bound


class WorkerHttpProtocol(BoundedHttpProtocol):
    """The bounded protocol of a ``--workers`` process, bound by :func:`bind_worker_gate`.

    uvicorn imports it by name in each worker (a class made by
    :func:`bounded_protocol` can't be sent to a spawned process).
    """

    __slots__ = ()


def bind_worker_gate(gate: ConnectionGate) -> None:
    """Give this process's :class:`WorkerHttpProtocol` its gate (once per worker)."""
    WorkerHttpProtocol.gate = gate
