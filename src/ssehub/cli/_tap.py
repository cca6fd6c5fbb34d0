"""A transport wrapper for ``ssehub listen``: tees the wire bytes, keeps error bodies, stops.

It wraps any :class:`~ssehub.client.Transport` and adds three things the
plain client does not expose:

* ``on_bytes``: called with every body chunk of an open stream, as received,
  before the client parses it (``--raw``).
* ``error_body``: the first 64 KiB of the body of the last answer that was
  not ``200``, so the CLI can print the hub's JSON error message.
* :meth:`stop`: callable from another thread (``--timeout``); closes the
  response being read and makes any later or in-flight :meth:`open` fail at
  once with :class:`~ssehub.errors.ConnectError`, which the client, being
  closed, treats as the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

from ..client import Request, StreamResponse, Transport
from ..errors import ConnectError

__all__ = ["TapTransport"]

_ERROR_BODY_LIMIT = 64 * 1024


class _TappedResponse:
    def __init__(
        self, response: StreamResponse, on_bytes: Callable[[bytes], object] | None
    ) -> None:
        self._response = response
        self._on_bytes = on_bytes

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    def iter_bytes(self) -> Iterator[bytes]:
        for chunk in self._response.iter_bytes():
            if self._on_bytes is not None:
                self._on_bytes(chunk)
            yield chunk

    def close(self) -> None:
        self._response.close()


class TapTransport:
    """A :class:`~ssehub.client.Transport` around another one; see the module docstring."""

    def __init__(self, inner: Transport, on_bytes: Callable[[bytes], object] | None = None) -> None:
        self._inner = inner
        self._on_bytes = on_bytes
        self._lock = threading.Lock()
        self._stopped = False
        self._current: StreamResponse | None = None
        self.error_body = b""

    def open(self, request: Request) -> StreamResponse:
        if self._stopped:
            raise ConnectError("stopped")
        response = self._inner.open(request)
        with self._lock:
            if self._stopped:
                response.close()
                raise ConnectError("stopped")
            self._current = response
        if response.status_code != 200:
            self.error_body = self._read_error_body(response)
            return response
        return _TappedResponse(response, self._on_bytes)

    @staticmethod
    def _read_error_body(response: StreamResponse) -> bytes:
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= _ERROR_BODY_LIMIT:
                    break
        except Exception:  # a body we can't read just gives a plainer message
            pass
        return bytes(body[:_ERROR_BODY_LIMIT])

    def stop(self) -> None:
        """Close the stream being read and refuse to open another (thread-safe, idempotent)."""
        with self._lock:
            self._stopped = True
            current, self._current = self._current, None
        if current is not None:
            current.close()

    def close(self) -> None:
        self.stop()
        self._inner.close()
