"""``GET /``: the seed's demo stream for programs, a landing page for browsers.

The stream is the seed's six events (``connected → thinking → thinking →
content → content → done``), one every ``demo_interval`` seconds, the data
being ``json.dumps(..., ensure_ascii=False)`` exactly as the seed's
``examples/04_sse_protocol.py`` builds it, so ``curl -N http://localhost:8004``
prints what the seed shows.  Then the stream ends, as in the seed.

One addition to the seed's bytes, so that well-behaved clients stop instead
of replaying the demo forever: the last event (``done``) carries
``id: seed-end`` (:data:`SEED_END_ID`), and a request whose ``Last-Event-ID``
is that id — a client reconnecting after the end — is answered ``204 No
Content``, which tells an ``EventSource`` (WHATWG: "fail the connection")
and ``ssehub listen`` to stop for good.  A client that lost the stream
before its end sends no id (the earlier events have none) and gets the
whole demo again, as from the seed's server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response

from ..hub import Hub
from ..protocol import ServerSentEvent
from ..server import EventSourceResponse, GuardedResponse, ServerSettings, counted_stream
from ._pages import page
from ._settings import DemoSettings

__all__ = ["SEED_END_ID", "SEED_EVENTS", "DemoRoot", "wants_html"]

#: The seed's events, verbatim.
SEED_EVENTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("connected", {"message": "服务器连接成功"}),
    ("thinking", {"step": "正在分析问题"}),
    ("thinking", {"step": "搜索知识库"}),
    ("content", {"text": "这是流式输出的一部分"}),
    ("content", {"text": "这是流式输出的下一部分"}),
    ("done", {"reason": "完成"}),
)

#: The ``id`` of the demo's last event; a reconnect carrying it gets ``204``.
SEED_END_ID = "seed-end"


def wants_html(request: Request) -> bool:
    """True for a browser navigating here: it prefers ``text/html`` and not a stream."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "text/event-stream" not in accept


async def seed_events(interval: float) -> AsyncIterator[ServerSentEvent]:
    """The seed's six events, ``interval`` seconds apart (none after the last).

    The last one carries ``id: seed-end``: the stream is over.
    """
    last = len(SEED_EVENTS) - 1
    for index, (event_type, data) in enumerate(SEED_EVENTS):
        if index:
            await asyncio.sleep(interval)
        yield ServerSentEvent(
            data=json.dumps(data, ensure_ascii=False),
            event=event_type,
            id=SEED_END_ID if index == last else None,
        )


class DemoRoot:
    """The ``/`` endpoint."""

    def __init__(self, hub: Hub, server: ServerSettings, settings: DemoSettings) -> None:
        self.hub = hub
        self.server = server
        self.settings = settings

    async def endpoint(self, request: Request) -> Response:
        if request.headers.get("last-event-id") == SEED_END_ID:
            return Response(status_code=204)  # the demo is over: a client stops here
        if wants_html(request):
            return page("index.html")
        # Counted against --max-connections like every stream (503 at the limit).
        stream = EventSourceResponse(
            seed_events(self.settings.demo_interval),
            prelude=False,
            heartbeat_interval=self.server.hub.heartbeat_interval,
        )
        # Under the hub's write deadline: a client that stops reading is cut, its slot freed.
        return counted_stream(self.hub, self.server, GuardedResponse(self.hub, stream))
