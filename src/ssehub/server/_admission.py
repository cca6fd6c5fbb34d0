"""Admission of streams: one limit, ``--max-connections``, for every stream route.

A stream counts while it is open: the hub's own subscriptions
(``hub.open_streams``) plus the streams an app writes from its own generator
for the same hub (the demos' ``GET /`` stream), which :func:`counted_stream`
counts from the moment it is admitted until its response ends.
:func:`admit_stream` refuses a new stream at the limit with the one answer
every stream route gives: ``503 too_many_connections`` with ``Retry-After``
(``/topics/…``, ``/events``, ``HubApp.subscribe`` and the plug-ins' routes).

Call :func:`admit_stream` right before the stream is registered
(``hub.open`` registers its subscription before its first ``await``), so a
burst of requests cannot all pass the check before any of them is counted.
The extra count is kept per hub (a weak mapping), never process-wide.
"""

from __future__ import annotations

import weakref

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..hub import Hub
from ._errors import ApiError
from ._settings import ServerSettings
from ._wrapped import WrappedResponse

__all__ = ["admit_stream", "counted_stream", "streams_open"]

#: Streams not held by the hub itself (generator streams), per hub.
_held: weakref.WeakKeyDictionary[Hub, int] = weakref.WeakKeyDictionary()


def streams_open(hub: Hub) -> int:
    """Every stream open on ``hub``: its subscriptions and the counted generator streams."""
    return hub.open_streams + _held.get(hub, 0)


def admit_stream(hub: Hub, settings: ServerSettings) -> None:
    """Raise ``503 too_many_connections`` when ``hub`` already holds its limit of streams."""
    limit = settings.max_connections
    if streams_open(hub) >= limit:
        raise ApiError(
            503,
            "too_many_connections",
            f"the hub holds its limit of {limit} streams",
            {"Retry-After": "5"},
        )


class _CountedResponse(WrappedResponse):
    """Counts one stream from construction until the wrapped response returns."""

    def __init__(self, hub: Hub, response: Response) -> None:
        super().__init__(hub, response)
        self._released = False
        _held[hub] = _held.get(hub, 0) + 1

    def _release(self) -> None:
        if not self._released:
            self._released = True
            left = _held.get(self._hub, 1) - 1
            if left > 0:
                _held[self._hub] = left
            else:
                _held.pop(self._hub, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._response(scope, receive, send)
        finally:
            self._release()

    def __del__(self) -> None:  # a response that was never sent
        self._release()


def counted_stream(hub: Hub, settings: ServerSettings, response: Response) -> Response:
    """Admit a stream that the hub does not hold and count it until ``response`` ends.

    Raises :class:`ApiError` (503) at the limit, as :func:`admit_stream`.
    """
    admit_stream(hub, settings)
    return _CountedResponse(hub, response)
