"""Live reads of durable streams: ``live=long-poll`` and ``live=sse`` (PROTOCOL.md §5.7–5.8).

A waiting reader takes the store's wake-up event for its stream *before*
reloading the metadata, so an append that lands in between is never
missed; wake-ups carry no data (another process's or node's commit wakes it
through the store) and a woken reader reloads.  Long-polls wait at most
``timeout`` (``--long-poll-timeout``); an SSE response sends a ``control``
event after every ``data`` event and after every quiet ``timeout`` (a
keep-alive), and ends after ``sse_lifetime`` (about 60 s, for CDN
collapsing) — the client reconnects from its last ``streamNextOffset``.

The SSE generator reads its next step (at most ``read_bytes``) only when the
response pulls it, after the previous chunk was sent, so a reader that stops
reading holds one step; the API sends it under the hub's write deadline
(:class:`~ssehub.server.GuardedResponse`), which cuts such a reader.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from ._jsonmode import format_messages
from ._model import base_type
from ._service import Answer, DurableStreams, Snapshot
from ._wire import format_offset, response_cursor

__all__ = ["LiveReads"]

_LINES = re.compile(r"\r\n|\r|\n")
_GONE_SINCE = Answer(404, {}, "not_found", "the stream was deleted")


def _sse_event(kind: str, payload: str, after: bytes = b"") -> bytes:
    """One event, then ``after`` (an encoded event) in the same bytes."""
    lines = "".join(f"data:{line}\n" for line in _LINES.split(payload))
    return f"event: {kind}\n{lines}\n{after.decode()}".encode()


def _payload(records: list[tuple[int, bytes]], binary: bool, is_json: bool) -> str:
    """The text of one ``data`` event: base64 for binary types, a JSON array in JSON mode."""
    chunks = [data for _, data in records]
    if binary:
        return base64.b64encode(b"".join(chunks)).decode()
    if is_json:
        return format_messages(chunks).decode("utf-8", "replace")
    return b"".join(chunks).decode("utf-8", "replace")


class LiveReads:
    """Long-poll and SSE over one :class:`DurableStreams`."""

    def __init__(
        self,
        streams: DurableStreams,
        *,
        timeout: float,
        sse_lifetime: float = 60.0,
        read_bytes: int = 1024 * 1024,
    ) -> None:
        self.streams = streams
        self.timeout = timeout
        self.sse_lifetime = sse_lifetime
        self.read_bytes = read_bytes

    @staticmethod
    def cursor(client: str | None) -> str:
        return response_cursor(client)

    async def _wait_change(
        self, snapshot: Snapshot, position: int, seconds: float
    ) -> Snapshot | Answer:
        """Wait until the stream has data after ``position``, is closed, or ``seconds`` pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        current = snapshot
        while current.meta.tail <= position and not current.meta.closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            event = self.streams.store.notifier.watch(snapshot.name)
            fresh = await self.streams.lookup(snapshot.name)
            if isinstance(fresh, Answer):
                return fresh
            if fresh.meta.id != snapshot.meta.id:
                return _GONE_SINCE
            current = fresh
            if current.meta.tail > position or current.meta.closed:
                break
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                pass
        return current

    async def long_poll(self, snapshot: Snapshot, position: int) -> Snapshot | int | Answer:
        """Data after ``position`` (a fresh snapshot), or the position to answer 204 with."""
        if snapshot.meta.tail > position:
            return snapshot
        if snapshot.meta.closed:
            return position
        current = await self._wait_change(snapshot, position, self.timeout)
        if isinstance(current, Answer):
            return current
        await self.streams.touch(current)
        return current if current.meta.tail > position else position

    def sse(self, snapshot: Snapshot, position: int, cursor: str | None) -> StreamingResponse:
        kind = base_type(snapshot.meta.content_type)
        binary = not (kind.startswith("text/") or kind == "application/json")
        # Set here, not as media_type: Starlette would add "; charset=utf-8".
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        if binary:
            headers["Stream-SSE-Data-Encoding"] = "base64"
        return StreamingResponse(
            self._events(snapshot, position, cursor, binary),
            headers=headers,
        )

    async def _events(
        self, snapshot: Snapshot, position: int, cursor: str | None, binary: bool
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self.sse_lifetime
        store = self.streams.store
        current = snapshot
        while True:
            meta = current.meta
            sent = False
            while position < meta.tail:
                records = await store.read(meta.id, position, self.read_bytes)
                if not records:
                    break
                position = records[-1][0]
                up_to_date = position >= meta.tail
                control = self._control(position, meta.closed and up_to_date, up_to_date, cursor)
                # One write: a data event and the control event that follows it.
                event = _sse_event("data", _payload(records, binary, meta.is_json), control)
                del records  # while the reader takes it, the step is held only as ``event``
                yield event
                if meta.closed and up_to_date:
                    return
                sent = True
            if meta.closed:
                yield self._control(position, True, True, cursor)
                return
            if not sent:
                # The first answer at the tail, or a keep-alive after a quiet spell.
                yield self._control(position, False, True, cursor)
            remaining = ends_at - loop.time()
            if remaining <= 0:
                return
            waited = await self._wait_change(current, position, min(self.timeout, remaining))
            if isinstance(waited, Answer):
                return
            await self.streams.touch(waited)
            current = waited

    @staticmethod
    def _control(position: int, closed: bool, up_to_date: bool, cursor: str | None) -> bytes:
        body: dict[str, object] = {"streamNextOffset": format_offset(position)}
        if closed:
            body["streamClosed"] = True
        else:
            body["streamCursor"] = response_cursor(cursor)
            if up_to_date:
                body["upToDate"] = True
        return _sse_event("control", json.dumps(body, separators=(",", ":")))
