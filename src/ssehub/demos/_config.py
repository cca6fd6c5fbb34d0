"""Tuning knobs of the demos that have no CLI flag, and a recent-history marker.

A knob named ``key`` (e.g. ``chat_token_delay``) is read from
``Settings.extra[key]`` first, then from the environment variable
``SSEHUB_<KEY>`` (``SSEHUB_CHAT_TOKEN_DELAY``), else its default.  Durations are
float seconds.  A value that is not a number (or is negative) is reported in
the log and the default is used: a typo in a demo knob must not stop the hub.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque

from ..hub import Hub
from ..server import Settings

__all__ = ["RecentCursor", "knob"]

logger = logging.getLogger("ssehub.demos")


def knob(settings: Settings, key: str, default: float) -> float:
    """The float value of demo knob ``key`` (see the module docstring)."""
    env = f"SSEHUB_{key.upper()}"
    raw = settings.extra.get(key)
    source = f"extra[{key!r}]"
    if raw is None:
        raw = os.environ.get(env)
        source = env
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        logger.warning("%s=%r is not a non-negative number; using %s", source, raw, default)
        return default
    return value


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
