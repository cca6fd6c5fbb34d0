"""A recent-history marker shared by the demos."""

from __future__ import annotations

from collections import deque

from ..hub import Hub

__all__ = ["RecentCursor"]


class RecentCursor:
    """Remembers the ``seq`` of the last ``size`` things a demo published.

    :meth:`since` is then a cursor just before the oldest of them: a page that
    opens its stream with ``?last_event_id=<since>`` gets that recent history
    replayed by the hub (exactly, or an ``ssehub-reset`` if retention dropped
    some), then live events.  ``None`` until something was published.
    """

    def __init__(self, size: int) -> None:
        self._seqs: deque[int] = deque(maxlen=size)

    def add(self, seq: int) -> None:
        self._seqs.append(seq)

    def since(self, hub: Hub) -> str | None:
        if not self._seqs:
            return None
        return hub.format_cursor(self._seqs[0] - 1)
