"""A chat answer's lifecycle, as its hub topic tells it (any node, any time, after a restart).

An answer topic ``chat/<answer_id>`` holds, in order: ``connected`` (naming
the owner), ``thinking`` steps, ``content`` tokens, and one terminal event —
``done`` ``{"reason"}`` or ``error`` ``{"message"}``.  Two *control* events
may come in between, written by other nodes and never part of the answer:

* ``stop`` ``{"cause"}`` — stop this answer (the node running it does);
* ``reader`` ``{}`` — a stream on another node reads this answer (the node
  running it does not count it as unread, see ``AnswerBook.tick``).

The state is read from the last event that is not a control event: none
terminal → ``running``; ``done`` ``complete``/``length`` → ``done``; ``done``
``stopped`` → ``stopped``; ``error`` → ``failed``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..hub import Hub, StoredEvent

__all__ = [
    "ANSWER_ID",
    "CONTROL_EVENTS",
    "READER_EVENT",
    "STOP_EVENT",
    "TERMINAL_EVENTS",
    "RunInfo",
    "Scan",
    "answer_of",
    "owner_of",
    "scan",
    "state_of",
]

#: The shape of an answer id (also the last segment of its topic).
ANSWER_ID = re.compile(r"[0-9a-f]{16}")
TERMINAL_EVENTS = frozenset({"done", "error"})
#: Another node asks the node running the answer to stop it.
STOP_EVENT = "stop"
#: Another node has a reader of the answer.
READER_EVENT = "reader"
CONTROL_EVENTS = frozenset({STOP_EVENT, READER_EVENT})


@dataclass(frozen=True, slots=True)
class RunInfo:
    """An answer's lifecycle as the store tells it: ``state`` and ``owner``."""

    state: str
    owner: str


@dataclass(frozen=True, slots=True)
class Scan:
    """What a bounded read of an answer topic found.

    ``first``: its first event; ``last``: its last event that is not a control
    event; ``complete``: false when the bounds stopped the read.
    """

    first: StoredEvent | None
    last: StoredEvent | None
    complete: bool


def answer_of(topic: str) -> str | None:
    """The answer id of an answer topic (``None``: not one)."""
    answer_id = topic.removeprefix("chat/")
    if answer_id == topic or ANSWER_ID.fullmatch(answer_id) is None:
        return None
    return answer_id


def state_of(last: StoredEvent | None) -> str:
    """The lifecycle state an answer's last (non-control) event gives."""
    if last is None or last.event not in TERMINAL_EVENTS:
        return "running"
    if last.event == "error":
        return "failed"
    try:
        reason = json.loads(last.data).get("reason")
    except (ValueError, AttributeError):
        reason = None
    return "stopped" if reason == "stopped" else "done"


def owner_of(first: StoredEvent) -> str:
    """The owner named by an answer's ``connected`` event (``""``: none)."""
    if first.event != "connected":
        return ""
    try:
        owner = json.loads(first.data).get("owner")
    except (ValueError, AttributeError):
        return ""
    return owner if isinstance(owner, str) else ""


async def scan(hub: Hub, topic: str, *, batch: int, max_events: int, max_bytes: int) -> Scan:
    """Read ``topic`` in batches of ``batch``, at most about ``max_events`` / ``max_bytes``."""
    after = 0
    first: StoredEvent | None = None
    last: StoredEvent | None = None
    events = size = 0
    while True:
        result = await hub.read([topic], after, batch)
        for row in result.events:
            first = first or row
            if row.event not in CONTROL_EVENTS:
                last = row
        if result.events:
            after = result.events[-1].seq
            events += len(result.events)
            size += sum(len(e.data) for e in result.events)
        if not result.more:
            return Scan(first, last, True)
        if events >= max_events or size >= max_bytes:
            return Scan(first, last, False)
