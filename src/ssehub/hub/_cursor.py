"""Cursors: the event IDs the hub puts on the wire, and the rules for reading them back.

Everything about what an ``id:`` means lives here.

A cursor is ``"{epoch}-{seq}"``: ``epoch`` names the store's ``seq`` space
(it changes when the store is wiped) and ``seq`` is the store-minted sequence
number of the last event the client has seen.  Because ``seq`` is strictly
increasing across all topics of a store (and is minted by the store, never by a
hub process), one cursor is valid for any set of topics and on any node that
shares the store.

Reading a ``Last-Event-ID`` gives one of three outcomes (:class:`CursorCheck`):

* ``resume``: a cursor of this store at or before its head; replay what came after.
* ``fresh``: no cursor at all; start with live events.
* ``reset``: anything else — garbage, another epoch, or a ``seq`` beyond the head
  (the store was replaced).  The client first receives the reserved
  :data:`RESET_EVENT` and then live events from the head.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "RESET_EVENT",
    "Cursor",
    "CursorCheck",
    "CursorOutcome",
    "check_cursor",
    "format_cursor",
    "parse_cursor",
]

#: The reserved event type that tells a client its cursor could not be honoured
#: exactly, so it should re-fetch its state.  Publishing it is refused.
RESET_EVENT = "ssehub-reset"

_CURSOR = re.compile(r"([0-9a-z]{1,32})-([0-9]{1,19})")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A parsed cursor."""

    epoch: str
    seq: int

    def __str__(self) -> str:
        return format_cursor(self.epoch, self.seq)


def format_cursor(epoch: str, seq: int) -> str:
    """The ``id:`` for position ``seq`` of the store ``epoch``."""
    return f"{epoch}-{seq}"


def parse_cursor(text: str) -> Cursor | None:
    """Parse ``"{epoch}-{seq}"``; ``None`` when ``text`` is not a cursor at all."""
    match = _CURSOR.fullmatch(text)
    if match is None:
        return None
    return Cursor(match.group(1), int(match.group(2)))


class CursorOutcome(enum.Enum):
    FRESH = "fresh"
    RESUME = "resume"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class CursorCheck:
    """What to do with a client's ``Last-Event-ID``.

    ``after`` is the ``seq`` to replay after (``RESUME``) or the head to start
    live from (``FRESH``, ``RESET``).  ``reason`` explains a reset.
    """

    outcome: CursorOutcome
    after: int
    reason: str = ""


def check_cursor(last_event_id: str | None, *, epoch: str, head: int) -> CursorCheck:
    """Decide how a subscription starts, given the store's ``epoch`` and ``head``."""
    if last_event_id is None or last_event_id == "":
        return CursorCheck(CursorOutcome.FRESH, head)
    cursor = parse_cursor(last_event_id.strip())
    if cursor is None:
        return CursorCheck(CursorOutcome.RESET, head, "malformed-cursor")
    if cursor.epoch != epoch:
        return CursorCheck(CursorOutcome.RESET, head, "unknown-epoch")
    if cursor.seq > head:
        return CursorCheck(CursorOutcome.RESET, head, "cursor-ahead-of-store")
    return CursorCheck(CursorOutcome.RESUME, cursor.seq)
