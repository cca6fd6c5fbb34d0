"""History for a stream that starts behind the head: where to start, then the replay.

A stream opened with a cursor (or a rewind, ``hub/_rewind.py``) replays the
history after it in steps read on demand, each bounded by events
(``replay_batch``) and bytes (half of ``max_queue_bytes``), so replay is paced
by the client and only one encoded step is held at a time.  Its subscription
was registered before the replay began (live events are held); when the replay
ends it goes live above the last replayed ``seq``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

from ..errors import HubError
from ._access import TopicGrant
from ._config import HubConfig
from ._rewind import Rewind
from ._stats import HubStats
from ._subscription import Subscription
from ._types import StoredEvent
from ._wire import encode_rows
from .backends import Backend

__all__ = ["replay_steps", "rewind_after", "step_bytes"]

logger = logging.getLogger("ssehub.hub")


def step_bytes(config: HubConfig) -> int:
    """The byte bound of one step: half the queue bound.

    One step may sit in the transport's buffer while the next waits to be
    written, so about ``max_queue_bytes`` are in flight.
    """
    return max(1, config.max_queue_bytes // 2)


async def rewind_after(
    backend: Backend,
    config: HubConfig,
    topics: Sequence[str],
    rewind: Rewind,
    head: int,
    grant: TopicGrant,
    *,
    now: float,
) -> int:
    """The ``seq`` a rewound stream replays after (see ``hub/_rewind.py``).

    ``now`` is the wall clock (seconds since the epoch, as the store stamps
    events).  ``since=earliest`` reads nothing.  A count or a duration scans the
    topics' retained history forward in bounded steps (``replay_batch``
    events, half of ``max_queue_bytes``), keeping at most N seqs: the
    cost is one read of the retained history, which retention bounds.
    Private events the grant does not select are not counted.
    """
    if rewind.events is None and rewind.seconds is None:
        return 0
    limit = step_bytes(config)
    cutoff = now - rewind.seconds if rewind.seconds is not None else None
    last: deque[int] = deque(maxlen=rewind.events or 1)
    after = 0
    while True:
        result = await backend.read(topics, after, config.replay_batch, max_bytes=limit)
        for row in result.events:
            if row.private and not grant.allows(row.topic):
                continue
            if cutoff is not None and row.time >= cutoff:
                return row.seq - 1
            last.append(row.seq)
        if result.events:
            after = result.events[-1].seq
        if not result.more or after >= head:
            break
    if cutoff is not None:
        return head
    return last[0] - 1 if len(last) == last.maxlen else 0


async def replay_steps(
    backend: Backend,
    config: HubConfig,
    stats: HubStats,
    sub: Subscription,
    after: int,
    head: int,
    *,
    encode_row: Callable[[StoredEvent], bytes],
    reset: Callable[[str, int, int], bytes],
    lenient: bool = False,
) -> AsyncIterator[bytes]:
    """History after ``after`` in bounded steps, then switch ``sub`` to live events.

    A step holds at most ``replay_batch`` events and about half of
    ``max_queue_bytes`` bytes (one event more when a single event is larger),
    and only its encoded chunk is kept while the client takes it.
    If retention removed anything after the cursor (at the start or while a
    slow client replayed), the client gets the reset event —
    ``reset("history-gap", after, top)``: the refused ``seq`` and the one the
    reset's id names — and goes live; except at the first step of a rewind
    (``lenient``), which asked for what is retained.
    """
    limit = step_bytes(config)
    while not sub.closed:
        try:
            result = await backend.read(sub.topics, after, config.replay_batch, max_bytes=limit)
        except HubError as exc:
            logger.warning("replay for a subscriber of %s failed: %s", sub.topics, exc)
            sub.close("store-unavailable")
            return
        gap, lenient = result.gap and not lenient, False
        if gap:
            # What the client already got stays got: the reset's id is past it.
            top = max(head, after)
            sub.go_live(top)
            yield reset("history-gap", after, top)
            return
        more = result.more
        chunk = b""
        if result.events:
            after = result.events[-1].seq
            stats.replayed += len(result.events)
            chunk = encode_rows(result.events, sub, encode_row, stats)
        del result  # only the encoded chunk is held while the client reads it
        if chunk:
            yield chunk
        if not more:
            break
    sub.go_live(after)
