"""The sans-I/O heart of both clients: what to send, what a response means, when to retry.

:class:`EventSource` and :class:`AsyncEventSource` only do the I/O (open,
read, sleep); every decision lives here, in one place, so the two can't drift.

Conventions, as a browser's ``EventSource`` and a bit better:

* Each attempt sends ``Accept: text/event-stream``, ``Cache-Control:
  no-store`` and, once there is one, the last event ID: as the
  ``Last-Event-ID`` header, or as a query parameter when asked to.
* ``200`` with ``text/event-stream`` opens the stream.  ``204`` stops for good
  (iteration just ends).  A status in ``retry_statuses`` (5xx and 429 by
  default) is retried, honouring a ``Retry-After`` in seconds; any other status
  raises :class:`~ssehub.errors.BadStatusError`, and another media type raises
  :class:`~ssehub.errors.ContentTypeError`: neither is retried.
* A stream that ends, breaks or stays silent past ``read_timeout`` is
  reconnected after a delay from :class:`~ssehub.protocol.ReconnectPolicy`:
  the first reconnection waits exactly the reconnection time (the stream's
  ``retry``, else the policy's ``default_delay``), as a browser does; failures
  in a row back off, jittered, never below it.  A stream is *healthy* once it
  dispatched an event; that starts the count afresh.
* The reconnection time is floored at :data:`MIN_RECONNECT_DELAY` (0.25 s):
  a server that sends ``retry: 0`` (or a policy with ``default_delay=0``)
  would otherwise have the client reconnect as fast as the loop spins, near
  a thousand times a second; the standard sets no floor, so this is ours
  (a browser polyfill such as Yaffle's clamps to a whole second).
* The first connection: when it cannot be made at all (refused, unreachable:
  :class:`~ssehub.errors.ConnectError`) the error is raised at once, unless
  ``retry_connect`` is set; once a stream has opened, a lost connection is
  retried as above.  An answer that can be retried (5xx, 429) is retried
  even on the first attempt: the server is there.
* Every retry is visible: it is logged on the ``ssehub.client`` logger (a
  warning when an error caused it, so it shows even with logging left
  unconfigured; info when the server ended the stream) and passed to the
  ``on_reconnect`` hook as :class:`Reconnecting` (attempt, delay, error).
* Hooks are plain callables, called synchronously from the iterating code.
"""

from __future__ import annotations

import enum
import json as jsonlib
import logging
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from ..errors import (
    BadStatusError,
    ClientError,
    ConnectError,
    ContentTypeError,
    ReconnectExhaustedError,
)
from ..protocol import Event, EventStreamParser, ReconnectPolicy, ReconnectState
from ._transport import Request

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "MIN_RECONNECT_DELAY",
    "UNSET",
    "ConnectionState",
    "Opened",
    "Reconnecting",
    "Session",
]

#: Statuses retried by default: every 5xx and 429 Too Many Requests.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({429, *range(500, 600)})

#: The shortest wait before any reconnection, in seconds, whatever ``retry`` the server sent.
MIN_RECONNECT_DELAY = 0.25

logger = logging.getLogger("ssehub.client")

#: Name of the query parameter that carries the last event ID when asked to.
DEFAULT_LAST_EVENT_ID_PARAM = "last_event_id"


class _Unset(enum.Enum):
    UNSET = enum.auto()


#: Marks the ``json=`` argument as not given (``None`` is valid JSON).
UNSET = _Unset.UNSET


class ConnectionState(enum.Enum):
    """Where a client is, for a program that shows it (``source.state``)."""

    CONNECTING = "connecting"  # the first attempt is under way
    OPEN = "open"  # a stream is open and being read
    RECONNECTING = "reconnecting"  # waiting to retry, or retrying
    CLOSED = "closed"  # for good: closed, stopped by 204, failed or gave up


@dataclass(frozen=True, slots=True)
class Opened:
    """Passed to ``on_open``: a stream was opened."""

    url: str
    status_code: int
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """Passed to ``on_reconnect`` before each wait: attempt number, delay in seconds, why."""

    attempt: int
    delay: float
    last_event_id: str
    error: ClientError | None  # None when the server ended the stream


OnOpen = Callable[[Opened], object]
OnError = Callable[[ClientError], object]
OnReconnect = Callable[[Reconnecting], object]


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


def _without(mapping: Mapping[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in mapping.items() if k.lower() != name.lower()}


class Session:
    """One event source's state: options, parser, backoff, connection state, hooks."""

    def __init__(
        self,
        url: str,
        *,
        method: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        json: Any,
        content: bytes | str | None,
        last_event_id: str,
        last_event_id_query: bool | str,
        reconnect: bool | None,
        retry_connect: bool,
        policy: ReconnectPolicy | None,
        retry_statuses: Collection[int],
        connect_timeout: float | None,
        read_timeout: float | None,
        max_event_size: int | None,
        on_open: OnOpen | None,
        on_error: OnError | None,
        on_reconnect: OnReconnect | None,
        clock: Callable[[], float],
        rng: random.Random | None,
    ) -> None:
        self.url = url
        self.method = method.upper()
        # JSON too: a hub then explains a refusal in a JSON error body (a bare
        # ``text/event-stream`` gets a browser-style "come back later" stream).
        base = {"Accept": "text/event-stream, application/json;q=0.5", "Cache-Control": "no-store"}
        for name, value in (headers or {}).items():
            base = _without(base, name)
            base[name] = value
        if json is not UNSET:
            if content is not None:
                raise TypeError("pass json= or content=, not both")
            content = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"))
            if not any(k.lower() == "content-type" for k in base):
                base["Content-Type"] = "application/json"
        self._headers = base
        self._params = dict(params or {})
        self._content = content.encode("utf-8") if isinstance(content, str) else content
        if last_event_id_query is True:
            last_event_id_query = DEFAULT_LAST_EVENT_ID_PARAM
        self._id_param = last_event_id_query or None
        self.reconnect = self.method == "GET" if reconnect is None else reconnect
        self.retry_connect = retry_connect
        self._ever_opened = False
        self.backoff = ReconnectState(policy, rng=rng)
        self.retry_statuses = retry_statuses
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.parser = EventStreamParser(max_event_size=max_event_size, last_event_id=last_event_id)
        self.state = ConnectionState.CONNECTING
        self._on_open = on_open
        self._on_error = on_error
        self._on_reconnect = on_reconnect
        self._clock = clock
        self._retry_hint: float | None = None
        self._healthy = False

    def request(self) -> Request:
        """The request for the next attempt, carrying the last event ID."""
        headers = _without(self._headers, "Last-Event-ID")
        params = dict(self._params)
        last_event_id = self.parser.last_event_id
        if last_event_id and self._id_param:
            params[self._id_param] = last_event_id
        elif last_event_id:
            headers["Last-Event-ID"] = last_event_id
        return Request(
            method=self.method,
            url=self.url,
            headers=headers,
            params=params,
            content=self._content,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )

    def opened(self, status_code: int, headers: Mapping[str, str]) -> ClientError | None:
        """Judge a response head.

        Returns ``None`` when the stream is open, or the retryable error to hand
        to :meth:`reconnect_delay`.  Raises a fatal error (after ``on_error``).
        ``204`` sets the state to closed: the caller checks :attr:`closed`.
        """
        if status_code == 204:
            self.state = ConnectionState.CLOSED
            return None
        if status_code != 200:
            error = BadStatusError(status_code)
            if status_code in self.retry_statuses:
                self._retry_hint = _retry_after(headers)
                return error
            self.fail(error)
        content_type = headers.get("content-type", "")
        if _media_type(content_type) != "text/event-stream":
            self.fail(ContentTypeError(content_type))
        self.state = ConnectionState.OPEN
        self._ever_opened = True
        self._healthy = False
        if self._on_open is not None:
            self._on_open(Opened(self.url, status_code, headers))
        return None

    @property
    def closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    def feed(self, chunk: bytes) -> list[Event]:
        events = self.parser.feed(chunk)
        if events and not self._healthy:
            self._healthy = True
            self.backoff.on_healthy()
        return events

    def ended(self) -> None:
        """The stream's bytes ended (cleanly, cut or timed out): drop any half-built event."""
        self.parser.eof()

    def fail(self, error: ClientError) -> NoReturn:
        """Report a fatal error, close for good, and raise it."""
        if self._on_error is not None:
            self._on_error(error)
        self.state = ConnectionState.CLOSED
        raise error

    def reconnect_delay(self, error: ClientError | None) -> float | None:
        """Seconds to wait before the next attempt; ``None`` when the source is done.

        Raises ``error`` when reconnecting is off, and
        :class:`~ssehub.errors.ReconnectExhaustedError` when the policy gives up.
        """
        if not self.reconnect:
            if error is not None:
                self.fail(error)
            self.state = ConnectionState.CLOSED
            return None
        if isinstance(error, ConnectError) and not (self._ever_opened or self.retry_connect):
            self.fail(error)
        if error is not None and self._on_error is not None:
            self._on_error(error)
        now = self._clock()
        backoff = self.backoff
        backoff.on_failure(now)
        if backoff.exhausted(now):
            self.state = ConnectionState.CLOSED
            raise ReconnectExhaustedError(
                f"gave up on {self.url} after {backoff.attempts - 1} reconnection attempts"
            ) from error
        retry = self.parser.retry
        floor_ms = int(MIN_RECONNECT_DELAY * 1000)
        delay = backoff.next_delay(None if retry is None else max(retry, floor_ms))
        delay = max(delay, MIN_RECONNECT_DELAY)
        if self._retry_hint is not None:
            delay, self._retry_hint = max(delay, self._retry_hint), None
        self.state = ConnectionState.RECONNECTING
        why = "the stream ended" if error is None else str(error) or type(error).__name__
        logger.log(
            logging.INFO if error is None else logging.WARNING,
            "reconnecting to %s in %.2fs (attempt %d): %s",
            self.url,
            delay,
            backoff.attempts,
            why,
        )
        if self._on_reconnect is not None:
            info = Reconnecting(self.backoff.attempts, delay, self.parser.last_event_id, error)
            self._on_reconnect(info)
        return delay

    def close(self) -> None:
        self.state = ConnectionState.CLOSED
