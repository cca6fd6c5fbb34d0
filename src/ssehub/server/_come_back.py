"""Refusing a browser's ``EventSource`` without stopping it for good.

A browser gives up on an ``EventSource`` forever on any non-200 answer, so a
stream request turned away for a passing reason (too many connections,
draining, store unavailable) is answered differently depending on what the
client accepts: a client whose ``Accept`` names ``text/event-stream`` but
nothing that holds JSON (exactly what an ``EventSource`` sends) gets ``200``
with a stream that carries only a comment naming the problem and a jittered
``retry:`` (between one and three times the ``Retry-After`` delay), then ends —
it comes back later by itself; every other client gets the JSON ``503``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response

from ..errors import HubError
from ..protocol import ServerSentEvent, encode, encode_comment
from ._errors import ApiError
from ._stream import SSE_HEADERS

__all__ = ["accept_of", "come_back_later", "stream_or_come_back", "wants_only_event_stream"]

_JSON_TYPES = frozenset({"application/json", "application/*", "*/*"})


def wants_only_event_stream(accept: str) -> bool:
    """True when ``accept`` names ``text/event-stream`` and no type that holds JSON."""
    types = {part.split(";")[0].strip() for part in accept.lower().split(",")}
    return "text/event-stream" in types and not types & _JSON_TYPES


def accept_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The ``Accept`` header of raw ASGI headers (joined if repeated)."""
    return ",".join(v.decode("latin-1") for k, v in headers if k.lower() == b"accept")


def come_back_later(
    status: int, code: str, message: str, retry_after: float, rng: random.Random
) -> bytes:
    """The body of the come-back-later stream (see the module docstring)."""
    retry = rng.randint(int(retry_after * 1000), int(retry_after * 3000))
    return encode_comment(f"{status} {code}: {message}") + encode(ServerSentEvent(retry=retry))


async def stream_or_come_back(
    request: Request, open_stream: Callable[[], Awaitable[Response]], rng: random.Random
) -> Response:
    """``await open_stream()``; a passing refusal (``503``) of a browser's stream comes back later.

    Any other refusal, or any client that accepts JSON, gets the error as raised.
    """
    try:
        return await open_stream()
    except (HubError, ApiError) as exc:
        refusal = exc if isinstance(exc, ApiError) else ApiError.of(exc)
        if refusal.status != 503 or not wants_only_event_stream(request.headers.get("accept", "")):
            raise
        delay = float((refusal.headers or {}).get("Retry-After", "2"))
        body = come_back_later(refusal.status, refusal.code, refusal.message, delay, rng)
        return Response(body, headers={k.decode(): v.decode() for k, v in SSE_HEADERS})
