"""The one seam between the client and HTTP: open a streaming request, read its bytes.

A transport turns a :class:`Request` into a response with a status, headers
and an iterator of byte chunks.  It reports failures with ssehub's own errors,
translated once here and chained with ``from``:

* opening fails (refused, unreachable, reset before the response head):
  :class:`~ssehub.errors.ConnectError`;
* no bytes within ``read_timeout`` (opening or reading):
  :class:`~ssehub.errors.ReadTimeoutError`;
* the connection breaks in the middle of the body: the byte iterator just ends.

Header values are sent as UTF-8 (a ``Last-Event-ID`` may hold any text).
  An event stream has no framing that tells a clean end from a cut: either
  way the half-built event is dropped and the client reconnects.

:class:`HTTPXTransport` and :class:`AsyncHTTPXTransport` are the httpx
implementations.  Durations are float seconds; ``None`` means no limit.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ..errors import ConnectError, ReadTimeoutError

__all__ = [
    "AsyncHTTPXTransport",
    "AsyncStreamResponse",
    "AsyncTransport",
    "HTTPXTransport",
    "Request",
    "StreamResponse",
    "Transport",
]


@dataclass(frozen=True, slots=True)
class Request:
    """One attempt to open the event stream (the client builds a fresh one per attempt)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None


class StreamResponse(Protocol):
    """An open response: the status and headers have arrived, the body is streaming."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive header lookup."""
        ...

    def iter_bytes(self) -> Iterator[bytes]:
        """The body's chunks as they arrive; raises ReadTimeoutError when none comes in time."""
        ...

    def close(self) -> None:
        """Release the connection; safe to call twice and from another thread."""
        ...


class Transport(Protocol):
    def open(self, request: Request) -> StreamResponse:
        """Send ``request`` and return once the response head has arrived."""
        ...

    def close(self) -> None: ...


class AsyncStreamResponse(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class AsyncTransport(Protocol):
    async def open(self, request: Request) -> AsyncStreamResponse: ...

    async def aclose(self) -> None: ...


def _build(client: httpx.Client | httpx.AsyncClient, request: Request) -> httpx.Request:
    timeout = httpx.Timeout(
        connect=request.connect_timeout,
        read=request.read_timeout,
        write=request.connect_timeout,
        pool=request.connect_timeout,
    )
    return client.build_request(
        request.method,
        request.url,
        headers={k.encode("ascii"): v.encode("utf-8") for k, v in request.headers.items()},
        params=dict(request.params) or None,
        content=request.content,
        timeout=timeout,
    )


def _open_error(exc: httpx.HTTPError, url: str) -> ConnectError | ReadTimeoutError:
    if isinstance(exc, httpx.ReadTimeout):
        return ReadTimeoutError(f"no response from {url} within the read timeout")
    return ConnectError(f"could not open {url}: {exc!r}")


def _shutdown(response: httpx.Response) -> None:
    """Shut the socket down so that a read blocked in another thread wakes up at once."""
    stream = response.extensions.get("network_stream")
    sock: Any = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _HTTPXStreamResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._ended = False

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    def iter_bytes(self) -> Iterator[bytes]:
        try:
            yield from self._response.iter_bytes()
        except httpx.ReadTimeout as exc:
            raise ReadTimeoutError("no bytes within the read timeout") from exc
        except (httpx.TransportError, httpx.StreamError):
            pass  # the connection broke: to an event stream that is its end
        finally:
            self._ended = True

    def close(self) -> None:
        if not self._ended:
            _shutdown(self._response)
        with contextlib.suppress(httpx.HTTPError, OSError, RuntimeError):
            self._response.close()


class HTTPXTransport:
    """A :class:`Transport` on an :class:`httpx.Client` (one is made, following redirects).

    A client passed in stays the caller's: :meth:`close` leaves it open.
    """

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._owned = client is None
        self._client = client if client is not None else httpx.Client(follow_redirects=True)

    def open(self, request: Request) -> StreamResponse:
        try:
            response = self._client.send(_build(self._client, request), stream=True)
        except httpx.HTTPError as exc:
            raise _open_error(exc, request.url) from exc
        return _HTTPXStreamResponse(response)

    def close(self) -> None:
        if self._owned:
            self._client.close()


class _AsyncHTTPXStreamResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.ReadTimeout as exc:
            raise ReadTimeoutError("no bytes within the read timeout") from exc
        except (httpx.TransportError, httpx.StreamError):
            pass  # the connection broke: to an event stream that is its end

    async def aclose(self) -> None:
        with contextlib.suppress(httpx.HTTPError, OSError, RuntimeError):
            await self._response.aclose()


class AsyncHTTPXTransport:
    """An :class:`AsyncTransport` on an :class:`httpx.AsyncClient` (made if not given)."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._owned = client is None
        self._client = client if client is not None else httpx.AsyncClient(follow_redirects=True)

    async def open(self, request: Request) -> AsyncStreamResponse:
        try:
            response = await self._client.send(_build(self._client, request), stream=True)
        except httpx.HTTPError as exc:
            raise _open_error(exc, request.url) from exc
        return _AsyncHTTPXStreamResponse(response)

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()
