"""The one seam between the client and HTTP: open a streaming request, read its bytes.

A transport turns a :class:`Request` into a response with a status, headers
and an iterator of byte chunks.  It reports failures with ssehub's own errors,
translated once here and chained with ``from``:

* opening fails (refused, unreachable, reset before the response head):
  :class:`~ssehub.errors.ConnectError`;
* no bytes within ``read_timeout`` (opening or reading):
  :class:`~ssehub.errors.ReadTimeoutError`;
* the connection breaks in the middle of the body: the byte iterator just ends;
* redirects are followed here, at most :data:`MAX_REDIRECTS` of them: more, or
  one back to a URL already visited, raise :class:`~ssehub.errors.RedirectError`
  (final: a loop does not mend itself).  httpx builds each next request (it
  drops ``Authorization`` and ``Cookie`` when leaving the origin); a redirect
  to another origin (scheme, host, port) also drops every header that is not
  one of :data:`CROSS_ORIGIN_HEADERS`, so an ``X-API-Key`` or any other
  credential never reaches a host it was not meant for, as a browser keeps
  custom headers to the origin that a script asked for.

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

from ..errors import ConnectError, ReadTimeoutError, RedirectError

__all__ = [
    "CROSS_ORIGIN_HEADERS",
    "MAX_REDIRECTS",
    "AsyncHTTPXTransport",
    "AsyncStreamResponse",
    "AsyncTransport",
    "HTTPXTransport",
    "Request",
    "StreamResponse",
    "Transport",
]


#: Redirects followed for one attempt before :class:`~ssehub.errors.RedirectError` (httpx: 20).
MAX_REDIRECTS = 10

#: The only request headers (lower-case) still sent after a redirect to another origin.
CROSS_ORIGIN_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "content-length",
        "content-type",
        "host",
        "last-event-id",
        "transfer-encoding",
        "user-agent",
    }
)


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


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port if url.port is not None else {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, port


def _redirected(response: httpx.Response, hops: list[str]) -> httpx.Request | None:
    """The request that follows ``response`` (``None``: not a redirect); see the docstring.

    ``hops`` holds the URLs visited so far and gets the next one.
    """
    follow = response.next_request
    if follow is None:
        return None
    target = str(follow.url)
    if target in hops:
        raise RedirectError(f"redirect loop: {' -> '.join([*hops, target])}")
    if len(hops) > MAX_REDIRECTS:
        raise RedirectError(f"more than {MAX_REDIRECTS} redirects from {hops[0]}")
    hops.append(target)
    if _origin(follow.url) != _origin(response.request.url):
        for name in [n for n in follow.headers if n.lower() not in CROSS_ORIGIN_HEADERS]:
            del follow.headers[name]
    return follow


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
    """A :class:`Transport` on an :class:`httpx.Client` (made if not given); redirects as above.

    A client passed in stays the caller's: :meth:`close` leaves it open.
    """

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._owned = client is None
        self._client = client if client is not None else httpx.Client()

    def open(self, request: Request) -> StreamResponse:
        outgoing: httpx.Request | None = _build(self._client, request)
        hops = [request.url]
        while outgoing is not None:
            try:
                response = self._client.send(outgoing, stream=True, follow_redirects=False)
            except httpx.HTTPError as exc:
                raise _open_error(exc, request.url) from exc
            try:
                outgoing = _redirected(response, hops)
            finally:
                if response.next_request is not None:
                    response.close()
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
        self._client = client if client is not None else httpx.AsyncClient()

    async def open(self, request: Request) -> AsyncStreamResponse:
        outgoing: httpx.Request | None = _build(self._client, request)
        hops = [request.url]
        while outgoing is not None:
            try:
                response = await self._client.send(outgoing, stream=True, follow_redirects=False)
            except httpx.HTTPError as exc:
                raise _open_error(exc, request.url) from exc
            try:
                outgoing = _redirected(response, hops)
            finally:
                if response.next_request is not None:
                    await response.aclose()
        return _AsyncHTTPXStreamResponse(response)

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()
