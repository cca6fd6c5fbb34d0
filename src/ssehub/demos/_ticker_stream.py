"""``GET /ticker/events?symbol=A&symbol=B``: the ticker topics, each event labelled by its topic.

A hub stream of several topics does not say which topic an event came from,
so the ticker page used to believe ``data.symbol`` — and anyone allowed to
publish to ``ticker/AAPL`` could move MSFT.  This route relays one hub
stream of ``ticker/<SYMBOL>`` topics (resumable: the ids are the hub's
cursors, ``Last-Event-ID`` / ``?last_event_id=`` work as on ``/events``)
and sends each ``price`` event as::

    event: price
    id: <the hub's cursor>
    data: {"topic": "ticker/AAPL", "data": "<the published data, unchanged>"}

The topic is the store's, never the publisher's word: it is looked up by the
event's ``seq`` in a bounded map that a hub observer fills with every live
ticker event, or, for older (replayed) events, read from the store in
batches.  Other event types are left out; ``ssehub-reset`` is passed on.
Like every stream route it counts against ``--max-connections``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response

from ..hub import RESET_EVENT, Hub, StoredEvent, Stream, parse_cursor
from ..protocol import EventStreamParser, ServerSentEvent
from ..server import (
    ApiError,
    EventSourceResponse,
    GuardedResponse,
    ServerSettings,
    admit_stream,
    last_event_id_of,
)

__all__ = ["MAX_SYMBOLS", "SYMBOL", "TickerStream"]

SYMBOL = re.compile(r"[A-Za-z0-9._-]{1,20}")
MAX_SYMBOLS = 50
_PREFIX = "ticker/"


class TickerStream:
    """The labelled ticker stream of one hub."""

    def __init__(
        self, hub: Hub, settings: ServerSettings, *, remember: int = 4096, batch: int = 64
    ) -> None:
        self.hub = hub
        self.settings = settings
        self.remember = remember
        self.batch = batch
        #: seq -> topic of the last ``remember`` ticker events.
        self._topics: OrderedDict[int, str] = OrderedDict()

    def observe(self, event: StoredEvent, deliveries: int) -> None:
        """Hub observer: remember the topic of every live ticker event (cheap)."""
        if event.topic.startswith(_PREFIX):
            self._learn(event.seq, event.topic)

    def _learn(self, seq: int, topic: str) -> None:
        self._topics[seq] = topic
        while len(self._topics) > self.remember:
            self._topics.popitem(last=False)

    async def topic_of(self, event_id: str, topics: list[str]) -> str | None:
        """The topic of the event with cursor ``event_id`` among ``topics`` (``None``: unknown)."""
        cursor = parse_cursor(event_id)
        if cursor is None or cursor.epoch != self.hub.epoch:
            return None
        topic = self._topics.get(cursor.seq)
        if topic is None:
            # an older event (replay): read it and the next few from the store at once
            result = await self.hub.read(topics, cursor.seq - 1, self.batch)
            for stored in result.events:
                self._learn(stored.seq, stored.topic)
            topic = self._topics.get(cursor.seq)
        return topic if topic in topics else None

    async def endpoint(self, request: Request) -> Response:
        symbols = request.query_params.getlist("symbol")
        if not symbols or len(symbols) > MAX_SYMBOLS:
            raise ApiError(400, "invalid_symbols", f"name 1 to {MAX_SYMBOLS} symbols: ?symbol=AAPL")
        bad = [s for s in symbols if SYMBOL.fullmatch(s) is None]
        if bad:
            raise ApiError(400, "invalid_symbols", "symbols are 1-20 of A-Z a-z 0-9 . _ -")
        topics = list(dict.fromkeys(_PREFIX + s for s in symbols))
        admit_stream(self.hub, self.settings)  # no await before the hub registers the stream
        stream = await self.hub.open(topics, last_event_id_of(request))
        relay = EventSourceResponse(
            self._relay(stream, topics),
            heartbeat_interval=self.settings.hub.heartbeat_interval,
            prelude=False,
        )
        return GuardedResponse(self.hub, relay)  # a reader that stops is cut at the deadline

    async def _relay(self, stream: Stream, topics: list[str]) -> AsyncIterator[ServerSentEvent]:
        parser = EventStreamParser()
        sent: tuple[str, int | None] = ("", None)
        try:
            chunks = stream.chunks()
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    events = parser.feed(chunk)
                    if not events and (parser.last_event_id, parser.retry) != sent:
                        # the opening control block: the cursor and the retry, no event
                        sent = (parser.last_event_id, parser.retry)
                        yield ServerSentEvent(id=sent[0] or None, retry=sent[1])
                    for event in events:
                        if event.event == RESET_EVENT:
                            yield ServerSentEvent(
                                data=event.data, event=RESET_EVENT, id=event.id, retry=parser.retry
                            )
                            continue
                        if event.event != "price":
                            continue
                        topic = await self.topic_of(event.id, topics)
                        if topic is None:
                            continue
                        data = json.dumps({"topic": topic, "data": event.data}, ensure_ascii=False)
                        yield ServerSentEvent(data=data, event="price", id=event.id)
        finally:
            stream.end()
