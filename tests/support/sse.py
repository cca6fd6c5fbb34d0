"""A synchronous event-stream reader for end-to-end tests: httpx + ssehub's parser.

Every read is bounded by httpx's read timeout and an overall deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from ssehub.protocol import Event, EventStreamParser

__all__ = ["StreamReader", "open_stream", "read_ui_message_stream"]


class StreamReader:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.parser = EventStreamParser()
        self.raw = bytearray()
        self.events: list[Event] = []
        self.ended = False
        self._chunks = response.iter_raw()

    def _read_one(self) -> bool:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.ended = True
            return False
        self.raw += chunk
        self.events.extend(self.parser.feed(chunk))
        return True

    def read_events(self, count: int, timeout: float = 15.0) -> list[Event]:
        """Read until ``count`` events in all have arrived; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(self.events)} of {count} events: {self.events}")
            if not self._read_one():
                raise AssertionError(f"stream ended after {len(self.events)} of {count} events")
        return self.events

    def read_until(self, needle: bytes, timeout: float = 15.0) -> bytes:
        """Read until ``needle`` appears in the raw bytes."""
        deadline = time.monotonic() + timeout
        while needle not in self.raw:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} not seen in {bytes(self.raw)!r}")
            if not self._read_one():
                raise AssertionError(f"stream ended before {needle!r}: {bytes(self.raw)!r}")
        return bytes(self.raw)

    def read_to_end(self, timeout: float = 15.0) -> bytes:
        deadline = time.monotonic() + timeout
        while self._read_one():
            if time.monotonic() > deadline:
                raise TimeoutError("stream did not end")
        return bytes(self.raw)


@contextmanager
def open_stream(
    url: str, *, headers: dict[str, str] | None = None, read_timeout: float = 15.0
) -> Iterator[StreamReader]:
    """GET ``url`` as an event stream; the reader is valid inside the block."""
    timeout = httpx.Timeout(10.0, read=read_timeout)
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        yield StreamReader(response)


def read_ui_message_stream(client: httpx.Client, method: str, url: str, **kwargs: Any) -> list[Any]:
    """An AI SDK UI message stream's chunks (parsed JSON), then the string ``"[DONE]"``.

    Asserts ``200``, ``text/event-stream`` and ``x-vercel-ai-ui-message-stream: v1``, and
    that the stream ends with ``[DONE]``.
    """
    chunks: list[Any] = []
    parser = EventStreamParser()
    with client.stream(method, url, **kwargs) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert response.headers["content-type"].startswith("text/event-stream")
        for raw in response.iter_bytes():
            for event in parser.feed(raw):
                if event.data == "[DONE]":
                    return [*chunks, "[DONE]"]
                chunks.append(json.loads(event.data))
    raise AssertionError(f"the stream ended without [DONE]: {chunks}")
