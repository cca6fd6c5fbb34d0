"""``EventSource``: the blocking, reconnecting event-stream client."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from typing import Any

import httpx

from ..errors import ClientError, ConnectError, ReadTimeoutError, RedirectError
from ..protocol import DEFAULT_MAX_EVENT_SIZE, Event, ReconnectPolicy
from ._session import (
    DEFAULT_RETRY_STATUSES,
    UNSET,
    ConnectionState,
    OnError,
    OnOpen,
    OnReconnect,
    Session,
)
from ._transport import HTTPXTransport, StreamResponse, Transport

__all__ = ["EventSource"]


class EventSource:
    """Read an event stream, reconnecting like a browser's ``EventSource`` and better.

    Iterate to get :class:`~ssehub.protocol.Event` objects; the first
    iteration opens the stream.  Use as a context manager, or call
    :meth:`close` (also from another thread, which ends the iteration).

    * ``method``, ``headers``, ``params``, ``json=`` or ``content=``: the
      request (POST streams as LLM APIs use).  ``reconnect`` defaults to on for
      ``GET`` only: re-sending another method's body could repeat its effect.
    * ``last_event_id``: resume from this ID.  ``last_event_id_query``: send it
      as a query parameter (``True``: ``last_event_id``; or a name) instead
      of the ``Last-Event-ID`` header.
    * ``policy``: the backoff and when to give up (default: forever).
      ``retry_statuses``: the statuses worth retrying (5xx and 429).  Every
      wait is at least :data:`~ssehub.client.MIN_RECONNECT_DELAY` (0.25 s),
      whatever ``retry`` the server sends.
    * ``retry_connect``: when the very first connection cannot be made
      (refused, unreachable), raise :class:`~ssehub.errors.ConnectError` at
      once (the default, so a wrong URL or a dead hub is never a silent wait),
      or with ``True`` keep trying under ``policy``.  Once a stream has opened,
      a lost connection is always retried.  Each retry is logged on the
      ``ssehub.client`` logger and passed to ``on_reconnect``.
    * Redirects are followed (at most 10, as :data:`~ssehub.client.MAX_REDIRECTS`
      says); a redirect to another origin drops every header but the
      protocol's own (``Authorization``, ``Cookie``, ``X-API-Key`` … stay
      behind, as a browser does), and a redirect loop or too many redirects
      raise :class:`~ssehub.errors.RedirectError`, never retried.
    * ``connect_timeout`` and ``read_timeout`` in float seconds (``None``: no
      limit); ``read_timeout`` catches a dead connection: no bytes, not even a
      heartbeat comment, in that long.
    * ``on_open``, ``on_error``, ``on_reconnect``: hooks; ``state`` tells where
      the source is.  ``sleep``, ``clock`` (monotonic seconds) and ``rng`` (the
      jitter's :class:`random.Random`) can be replaced in tests.
    * ``client`` (an :class:`httpx.Client`, left open) or ``transport`` (any
      :class:`~ssehub.client.Transport`).
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = UNSET,
        content: bytes | str | None = None,
        last_event_id: str = "",
        last_event_id_query: bool | str = False,
        reconnect: bool | None = None,
        retry_connect: bool = False,
        policy: ReconnectPolicy | None = None,
        retry_statuses: Collection[int] = DEFAULT_RETRY_STATUSES,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 60.0,
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE,
        on_open: OnOpen | None = None,
        on_error: OnError | None = None,
        on_reconnect: OnReconnect | None = None,
        client: httpx.Client | None = None,
        transport: Transport | None = None,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if client is not None and transport is not None:
            raise TypeError("pass client= or transport=, not both")
        self._session = Session(
            url,
            method=method,
            headers=headers,
            params=params,
            json=json,
            content=content,
            last_event_id=last_event_id,
            last_event_id_query=last_event_id_query,
            reconnect=reconnect,
            retry_connect=retry_connect,
            policy=policy,
            retry_statuses=retry_statuses,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_event_size=max_event_size,
            on_open=on_open,
            on_error=on_error,
            on_reconnect=on_reconnect,
            clock=clock,
            rng=rng,
        )
        self._owns_transport = transport is None
        self._transport: Transport = transport or HTTPXTransport(client)
        self._closing = threading.Event()
        self._sleep = sleep if sleep is not None else self._closing.wait
        self._response: StreamResponse | None = None
        self._events: Generator[Event, None, None] | None = None

    @property
    def url(self) -> str:
        return self._session.url

    @property
    def state(self) -> ConnectionState:
        return self._session.state

    @property
    def last_event_id(self) -> str:
        """The last event ID received (or given at start): sent on reconnect."""
        return self._session.parser.last_event_id

    @property
    def retry(self) -> int | None:
        """The reconnection time in milliseconds, as last set by the stream."""
        return self._session.parser.retry

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        if self._events is None:
            self._events = self._run()
        return self._events

    def __next__(self) -> Event:
        return next(iter(self))

    def close(self) -> None:
        """Stop for good: close the open stream, end the iteration; idempotent."""
        self._closing.set()
        self._session.close()
        response = self._response
        if response is not None:
            response.close()
        events = self._events
        if events is not None and not getattr(events, "gi_running", False):
            events.close()
        if self._owns_transport:
            with contextlib.suppress(Exception):
                self._transport.close()

    def _run(self) -> Generator[Event, None, None]:
        session = self._session
        try:
            while not session.closed:
                error = yield from self._attempt()
                if session.closed or self._closing.is_set():
                    return
                delay = session.reconnect_delay(error)
                if delay is None:
                    return
                self._sleep(delay)
        finally:
            session.close()

    def _attempt(self) -> Generator[Event, None, ClientError | None]:
        """Open the stream once and yield its events; return why it ended (None: it ended)."""
        session = self._session
        try:
            response = self._transport.open(session.request())
        except RedirectError as exc:
            session.fail(exc)
        except (ConnectError, ReadTimeoutError) as exc:
            return exc
        except Exception:
            if self._closing.is_set():
                return None
            raise
        self._response = response
        if self._closing.is_set():  # close() ran while the request was being sent
            self._response = None
            response.close()
            return None
        try:
            error = session.opened(response.status_code, response.headers)
            if error is not None or session.closed:
                return error
            for chunk in response.iter_bytes():
                yield from session.feed(chunk)
            return None
        except ReadTimeoutError as exc:
            return exc
        except Exception:
            if self._closing.is_set():
                return None
            raise
        finally:
            self._response = None
            response.close()
            session.ended()
