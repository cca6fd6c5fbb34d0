"""Stored rows as stream bytes: the ``topic:`` line, the reset event, replay chunks.

No stored row can break a stream: a row that cannot be encoded (written by an
older version or by hand) is skipped with a log line and counted in
``HubStats.skipped`` (:func:`skip_row`), both live and on replay.

The encoding of one row (``id: {epoch}-{seq}``, or an adapter's own format) is
:meth:`Hub.encode_stored`; the functions here take it as ``encode_row``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from ..errors import EncodeError
from ..protocol import ServerSentEvent, encode
from ._cursor import RESET_EVENT
from ._stats import HubStats
from ._subscription import Subscription
from ._types import StoredEvent

__all__ = ["MAX_ECHOED_CURSOR", "encode_rows", "reset_chunk", "skip_row", "topic_line"]

logger = logging.getLogger("ssehub.hub")

#: The longest cursor a reset event echoes back (characters); longer ones are cut.
MAX_ECHOED_CURSOR = 64


def topic_line(topic: str) -> bytes:
    """The field line that names an event's topic on a tagged stream: ``topic: <name>\\n``.

    An unknown field to the WHATWG parser (ignored: nothing else changes), so
    tagged streams stay readable by every conforming client.  A valid topic
    holds no CR, LF or NUL (``_topics.validate_topic``), so the line can't
    forge another field.
    """
    return b"topic: " + topic.encode() + b"\n"


def reset_chunk(
    stats: HubStats, reason: str, last_event_id: str | None, cursor: str, retry: int | None
) -> bytes:
    """The reserved reset event: ``data`` names the reason and the refused cursor.

    ``cursor`` is the event's own ``id`` (where the client resumes from).  The
    refused cursor is echoed back cut to :data:`MAX_ECHOED_CURSOR` characters.
    Counts the reset in ``stats.resets``.
    """
    stats.resets += 1
    echoed = last_event_id
    if echoed is not None and len(echoed) > MAX_ECHOED_CURSOR:
        echoed = echoed[:MAX_ECHOED_CURSOR] + "…"
    payload = {"reason": reason, "last_event_id": echoed}
    return encode(
        ServerSentEvent(data=json.dumps(payload), event=RESET_EVENT, id=cursor, retry=retry)
    )


def skip_row(stats: HubStats, row: StoredEvent, exc: EncodeError) -> None:
    """Count and log a stored row that can't be encoded (it is left out of every stream)."""
    stats.skipped += 1
    logger.warning(
        "skipped stored event %d of %r: it can't be encoded (%s)", row.seq, row.topic, exc
    )


def encode_rows(
    rows: Iterable[StoredEvent],
    sub: Subscription,
    encode_row: Callable[[StoredEvent], bytes],
    stats: HubStats,
) -> bytes:
    """The wire chunks of ``rows`` joined; rows that can't be encoded are skipped.

    A row is kept only when ``sub`` admits it (a private one needs its grant);
    a tagged ``sub`` gets each behind its ``topic:`` line (:func:`topic_line`).
    """
    chunks: list[bytes] = []
    tagged = sub.tagged
    for row in rows:
        if (row.private or sub.accept is not None) and not sub.admits(row):
            continue
        try:
            chunk = encode_row(row)
        except EncodeError as exc:
            skip_row(stats, row, exc)
            continue
        if tagged:
            chunks.append(topic_line(row.topic))
        chunks.append(chunk)
    return b"".join(chunks)
