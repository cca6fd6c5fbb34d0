"""Resumable AI runs for the AI SDK: a run in a hub topic, served as a UI message stream.

The Vercel AI SDK (v5) reads a *UI message stream*: an event stream whose
``data:`` lines are JSON chunks (``start``, ``text-start``, ``text-delta``,
``text-end``, ``reasoning-*``, ``start-step``, ``finish-step``, ``finish``,
``error``, ``abort`` …), ending with ``data: [DONE]``, marked by the response
header ``x-vercel-ai-ui-message-stream: v1``.  ``useChat({resume: true})``
(``DefaultChatTransport.reconnectToStream``) asks ``GET {api}/{chatId}/stream``
on mount: ``204`` means no run is active; otherwise the server replays the
active run from its start, then live.

* :class:`UIMessageStreamResponse` sends chunks in that format (heartbeats,
  disconnect handling and backpressure from :class:`EventSourceResponse`).
* :class:`RunLog` keeps runs in one hub topic (one topic per chat): each chunk
  is one event whose type is the chunk's ``type``, so any process sharing the
  store can tell whether a run is active (its last chunk is not ``finish``,
  ``error`` or ``abort``) and replay it from its last ``start`` chunk.  Runs
  are private events by default: the hub's topic API shows them only to a
  token granting the topic.
* :func:`stream_events` reads a hub :class:`~ssehub.hub.Stream` as parsed events.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response

from ..hub import RESET_EVENT, Hub, Selector, StoredEvent, Stream, TopicGrant
from ..protocol import Event, EventStreamParser, ServerSentEvent
from ._stream import EventSourceResponse

__all__ = [
    "TERMINAL_CHUNKS",
    "UI_MESSAGE_STREAM_HEADERS",
    "RunLog",
    "UIMessageStreamResponse",
    "stream_events",
]

#: The response header that marks a UI message stream (AI SDK v5).
UI_MESSAGE_STREAM_HEADERS: Mapping[str, str] = {"x-vercel-ai-ui-message-stream": "v1"}
#: The chunk types that end a run.
TERMINAL_CHUNKS = frozenset({"finish", "error", "abort"})


class UIMessageStreamResponse(EventSourceResponse):
    """Stream UI message chunks (mappings with a ``type``) the way the AI SDK reads them.

    Each chunk is one ``data:`` line of JSON; ``data: [DONE]`` follows the last.
    """

    def __init__(
        self, chunks: AsyncIterable[Mapping[str, Any]], *, heartbeat_interval: float = 15.0
    ) -> None:
        super().__init__(
            _frames(chunks),
            headers=UI_MESSAGE_STREAM_HEADERS,
            heartbeat_interval=heartbeat_interval,
            prelude=False,
        )


async def _frames(chunks: AsyncIterable[Mapping[str, Any]]) -> AsyncIterator[ServerSentEvent]:
    async for chunk in chunks:
        yield ServerSentEvent(data=json.dumps(chunk, ensure_ascii=False))
    yield ServerSentEvent(data="[DONE]")


async def stream_events(stream: Stream) -> AsyncIterator[Event]:
    """The events of a hub stream, parsed (control blocks dispatch none); ends it when left."""
    parser = EventStreamParser()
    chunks = stream.chunks()
    try:
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                for event in parser.feed(chunk):
                    yield event
    finally:
        stream.end()


class RunLog:
    """The runs of one chat, kept in the hub topic ``topic`` (see the module docstring).

    ``max_scan`` bounds the events read to find the last run (retention bounds
    the topic too); each read holds at most 500 events and about 1 MiB.
    """

    def __init__(
        self, hub: Hub, topic: str, *, private: bool = True, max_scan: int = 100_000
    ) -> None:
        self.hub = hub
        self.topic = topic
        self.private = private
        self.max_scan = max_scan
        self.grant = TopicGrant.of([Selector.exact(topic)])

    async def append(self, chunk: Mapping[str, Any]) -> None:
        """Store one chunk (a ``start`` chunk begins a new run)."""
        kind = chunk.get("type")
        if not isinstance(kind, str):
            raise ValueError("a UI message chunk needs a string 'type'")
        data = json.dumps(chunk, ensure_ascii=False)
        await self.hub.publish(self.topic, data, kind, private=self.private)

    async def active(self) -> bool:
        """Whether the topic's last run has not ended."""
        _, last = await self._last_run()
        return last is not None and last.event not in TERMINAL_CHUNKS

    async def response(self, *, heartbeat_interval: float = 15.0) -> Response:
        """``204`` when no run is active, else the active run from its start, then live."""
        start, last = await self._last_run()
        if last is None or last.event in TERMINAL_CHUNKS:
            return Response(status_code=204)
        cursor = self.hub.format_cursor(start)
        stream = await self.hub.open([self.topic], cursor, grant=self.grant)
        return UIMessageStreamResponse(_run_chunks(stream), heartbeat_interval=heartbeat_interval)

    async def _last_run(self) -> tuple[int, StoredEvent | None]:
        """The ``seq`` just before the last ``start`` chunk, and the topic's last event."""
        after = start = read = 0
        last: StoredEvent | None = None
        while read < self.max_scan:
            result = await self.hub.read([self.topic], after, 500, max_bytes=1 << 20)
            for row in result.events:
                if row.event == "start":
                    start = row.seq - 1
                last = row
            read += len(result.events)
            if result.events:
                after = result.events[-1].seq
            if not result.more:
                break
        return start, last


async def _run_chunks(stream: Stream) -> AsyncIterator[dict[str, Any]]:
    """A run's chunks from a hub stream, ending after its terminal chunk."""
    async for event in stream_events(stream):
        if event.event == RESET_EVENT:
            yield {"type": "error", "errorText": "the run's history is no longer available"}
            return
        chunk = json.loads(event.data)
        yield chunk
        if event.event in TERMINAL_CHUNKS:
            return
