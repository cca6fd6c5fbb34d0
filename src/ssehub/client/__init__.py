"""The reconnecting event-stream client (:class:`EventSource`, :class:`AsyncEventSource`),
and the publishers (:class:`Publisher`, :class:`AsyncPublisher`).

Built on ssehub's own parser and httpx, behind one small seam
(:class:`Transport` / :class:`AsyncTransport`).  Errors come from
:mod:`ssehub.errors`.  ::

    from ssehub.client import EventSource

    with EventSource("http://localhost:8004/topics/news") as source:
        for event in source:
            print(event.event, event.data, event.id)
"""

from __future__ import annotations

from ..protocol import ReconnectPolicy
from ._async import AsyncEventSource
from ._publisher import RETRY_STATUSES, AsyncPublisher, Publisher
from ._session import (
    DEFAULT_RETRY_STATUSES,
    MIN_RECONNECT_DELAY,
    ConnectionState,
    Opened,
    Reconnecting,
)
from ._sync import EventSource
from ._transport import (
    CROSS_ORIGIN_HEADERS,
    MAX_REDIRECTS,
    AsyncHTTPXTransport,
    AsyncStreamResponse,
    AsyncTransport,
    HTTPXTransport,
    Request,
    StreamResponse,
    Transport,
)

__all__ = [
    "CROSS_ORIGIN_HEADERS",
    "DEFAULT_RETRY_STATUSES",
    "MAX_REDIRECTS",
    "MIN_RECONNECT_DELAY",
    "RETRY_STATUSES",
    "AsyncEventSource",
    "AsyncHTTPXTransport",
    "AsyncPublisher",
    "AsyncStreamResponse",
    "AsyncTransport",
    "ConnectionState",
    "EventSource",
    "HTTPXTransport",
    "Opened",
    "Publisher",
    "ReconnectPolicy",
    "Reconnecting",
    "Request",
    "StreamResponse",
    "Transport",
]
