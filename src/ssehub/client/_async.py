"""``AsyncEventSource``: the asynchronous, reconnecting event-stream client (asyncio or trio)."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection, Mapping
from typing import Any

import anyio
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
from ._transport import AsyncHTTPXTransport, AsyncStreamResponse, AsyncTransport

__all__ = ["AsyncEventSource"]


class AsyncEventSource:
    """Read an event stream asynchronously: :class:`~ssehub.client.EventSource`'s twin.

    ``async for event in source`` opens the stream; use ``async with`` or call
    :meth:`aclose` (also from another task, which ends the iteration).  The
    options are :class:`~ssehub.client.EventSource`'s; ``client`` is an
    :class:`httpx.AsyncClient`, ``transport`` an
    :class:`~ssehub.client.AsyncTransport` and ``sleep`` an async callable.
    Hooks are plain (synchronous) callables, called from the iterating task.
    Cancelling a pending step of the iteration closes the source, as it does
    any async generator.
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
        client: httpx.AsyncClient | None = None,
        transport: AsyncTransport | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
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
        self._transport: AsyncTransport = transport or AsyncHTTPXTransport(client)
        self._closing = False
        self._wake: anyio.Event | None = None
        self._sleep = sleep if sleep is not None else self._sleep_unless_closed
        self._response: AsyncStreamResponse | None = None
        self._events: AsyncGenerator[Event, None] | None = None

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

    async def __aenter__(self) -> AsyncEventSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._events is None:
            self._events = self._run()
        return self._events

    async def __anext__(self) -> Event:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        """Stop for good: close the open stream, end the iteration; idempotent."""
        self._closing = True
        self._session.close()
        if self._wake is not None:
            self._wake.set()
        response = self._response
        if response is not None:
            await response.aclose()
        events = self._events
        if events is not None and not getattr(events, "ag_running", False):
            await events.aclose()
        if self._owns_transport:
            with contextlib.suppress(Exception):
                await self._transport.aclose()

    async def _sleep_unless_closed(self, delay: float) -> None:
        if self._wake is None:
            self._wake = anyio.Event()
        if self._closing:
            return
        with anyio.move_on_after(delay):
            await self._wake.wait()

    async def _run(self) -> AsyncGenerator[Event, None]:
        session = self._session
        try:
            while not session.closed:
                error: ClientError | None = None
                async with contextlib.aclosing(self._attempt()) as attempt:
                    async for item in attempt:
                        if isinstance(item, Event):
                            yield item
                        else:
                            error = item
                if session.closed or self._closing:
                    return
                delay = session.reconnect_delay(error)
                if delay is None:
                    return
                await self._sleep(delay)
        finally:
            session.close()

    async def _attempt(self) -> AsyncGenerator[Event | ClientError, None]:
        """Open the stream once and yield its events, then the error that ended it (if any)."""
        session = self._session
        try:
            response = await self._transport.open(session.request())
        except RedirectError as exc:
            session.fail(exc)
        except (ConnectError, ReadTimeoutError) as exc:
            yield exc
            return
        except Exception:
            if self._closing:
                return
            raise
        self._response = response
        if self._closing:  # aclose() ran while the request was being sent
            self._response = None
            await response.aclose()
            return
        try:
            error = session.opened(response.status_code, response.headers)
            if error is not None:
                yield error
            if error is not None or session.closed:
                return
            chunks = response.aiter_bytes()
            try:
                async for chunk in chunks:
                    for event in session.feed(chunk):
                        yield event
            finally:
                close_chunks = getattr(chunks, "aclose", None)
                if close_chunks is not None:
                    await close_chunks()
        except ReadTimeoutError as exc:
            yield exc
        except Exception:
            if self._closing:
                return
            raise
        finally:
            self._response = None
            await response.aclose()
            session.ended()
