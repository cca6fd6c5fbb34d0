"""Where a Mercure subscription starts: ``Last-Event-ID`` read against the hub's history.

A subscriber names the last update it saw by (first found wins) the
``Last-Event-ID`` header, the ``lastEventID`` query parameter (0.x) or the
``last_event_id`` one (1.0).  The value is one of:

* ``earliest`` — everything the history holds for the adapter topic;
* a hub id (``urn:ssehub:{epoch}-{seq}``) or a bare hub cursor (the one the
  opening write of every stream carries) — resumed exactly, as on the topic API;
* anything else — a publisher-supplied id, looked up in history, oldest first
  (the spec's rule for a reused id); found: resumed after that update.  A
  lookup reads the history in bounded steps, like a replay, and stops at the
  first hit; Mercure's own Bolt store scans the same way.  One scan runs at a
  time per endpoint (the ``scans`` lock), so clients that reconnect with unknown
  ids queue behind each other instead of multiplying the work.

The answer is the cursor to hand to ``Hub.open`` (always a cursor of this
store, so the hub's exact resume does the rest) and the value for the
``Last-Event-ID`` / ``Mercure-Last-Event-ID`` response headers: the id the
replay starts after, or ``earliest`` when it starts at the oldest update or
the id was not found (the stream then starts with live updates).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import Request

from ..hub import Hub, parse_cursor
from ._updates import ADAPTER_TOPIC, HUB_ID_PREFIX, hub_id, id_prefix

__all__ = ["EARLIEST", "Start", "requested_id", "resolve_start"]

EARLIEST = "earliest"
#: Longest ``Last-Event-ID`` looked up, in characters.
MAX_ID_LENGTH = 1024
_STEP_EVENTS = 500
_STEP_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Start:
    """Where a stream starts: ``cursor`` for ``Hub.open``; ``echoed`` for the headers.

    ``cursor`` is ``None`` for a subscriber that named nothing: it starts live
    (no replay step is set up), and ``echoed`` is the head read just before,
    at or before where the stream starts (a client resuming there may see an
    update twice, never miss one).
    """

    cursor: str | None
    echoed: str


def requested_id(request: Request) -> str | None:
    """The last event id a subscribe request names, if any."""
    for value in (
        request.headers.get("last-event-id"),
        request.query_params.get("lastEventID"),
        request.query_params.get("last_event_id"),
    ):
        if value:
            return value
    return None


async def _first_seq(hub: Hub) -> int:
    """The ``seq`` just before the oldest update history holds (the head when none)."""
    result = await hub.read([ADAPTER_TOPIC], 0, 1, max_bytes=1)
    if result.events:
        return result.events[0].seq - 1
    return await hub.head()


async def _find(hub: Hub, update_id: str, scans: asyncio.Lock) -> int | None:
    async with scans:
        return await _scan(hub, update_id)


async def _scan(hub: Hub, update_id: str) -> int | None:
    prefix = id_prefix(update_id)
    after = 0
    while True:
        result = await hub.read([ADAPTER_TOPIC], after, _STEP_EVENTS, max_bytes=_STEP_BYTES)
        for row in result.events:
            if row.data.startswith(prefix):
                return row.seq
        if not result.events or not result.more:
            return None
        after = result.events[-1].seq


async def resolve_start(hub: Hub, requested: str | None, scans: asyncio.Lock) -> Start:
    """Where a subscription that names ``requested`` starts (see the module docstring)."""
    epoch = hub.epoch
    if requested is None:
        return Start(None, hub_id(epoch, await hub.head()))
    if requested == EARLIEST:
        return Start(hub.format_cursor(await _first_seq(hub)), EARLIEST)
    text = requested[len(HUB_ID_PREFIX) :] if requested.startswith(HUB_ID_PREFIX) else requested
    cursor = parse_cursor(text)
    if cursor is not None and cursor.epoch == epoch:
        return Start(text, requested)
    if len(requested) <= MAX_ID_LENGTH:
        seq = await _find(hub, requested, scans)
        if seq is not None:
            return Start(hub.format_cursor(seq), requested)
    head = await hub.head()
    return Start(hub.format_cursor(head), EARLIEST)
