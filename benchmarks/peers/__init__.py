"""The servers users pick today, written as their docs recommend, for the hub benchmarks.

Each peer is a small broadcast app with one ``asyncio.Queue`` per subscriber and the
same HTTP surface as ``ssehub serve``, so one load client drives all three:

- ``GET /topics/{topic}``: an event stream.  After the subscriber's queue is registered
  the first block is ``retry: 3000`` (no data), so a client knows it is subscribed;
  then one event per publish (``id:``, ``event:``, ``data:``).
- ``POST /topics/{topic}``: JSON ``{"data": ..., "event": "..."}`` or a plain-text body
  (``?event=`` names the type) is put on every subscriber's queue; ``201``
  ``{"id": "...", "topic": "..."}``.
- ``GET /healthz``: ``200`` once the server accepts connections.

Run one with ``python -m benchmarks.peers.sse_starlette_app --port P`` or
``python -m benchmarks.peers.aiohttp_sse_app --port P``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["PublishedEvent", "parse_publish"]


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """One published event, shared by every subscriber queue of its topic."""

    id: str
    data: str
    event: str | None


def parse_publish(body: bytes, content_type: str, event: str | None) -> tuple[str, str | None]:
    """The ``(data, event)`` of a publish body, read as ``ssehub serve`` reads it.

    A JSON body (``Content-Type: application/json``) is ``{"data": ..., "event": ...}``,
    where a non-string ``data`` is sent as its JSON text; any other body is the data
    itself and ``event`` (the ``?event=`` query parameter) names the type.
    Raises :class:`ValueError` for JSON that is not such an object.
    """
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return body.decode("utf-8"), event
    doc = json.loads(body)
    if not isinstance(doc, dict) or "data" not in doc:
        raise ValueError('a JSON publish is an object with a "data" member')
    data = doc["data"]
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    kind = doc.get("event", event)
    return text, kind if isinstance(kind, str) else None
