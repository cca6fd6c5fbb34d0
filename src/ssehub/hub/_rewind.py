"""Late joiners: where a stream without a cursor starts in the retained history.

A subscriber that never saw a topic can ask for part of its retained history
before the live events (``?since=earliest``, ``?rewind=N``, ``?rewind=30s``).
This module parses those requests (sans-I/O); :meth:`Hub.open` turns a
:class:`Rewind` into the ``seq`` to replay after.  A ``Last-Event-ID`` always
wins over a rewind: a client that has a cursor resumes exactly.

Conventions:

* ``since=earliest`` — everything the store still holds for the topics.
* ``rewind=N`` — the last ``N`` retained events (``1 <= N <= MAX_REWIND_EVENTS``).
* ``rewind=DURATION`` — events published in the last ``DURATION``: digits with
  an optional fraction and one unit ``ms``, ``s``, ``m`` or ``h``
  (``30s``, ``1.5m``), at most :data:`MAX_REWIND_SECONDS`.

Retention that removed the oldest events is *not* a reset for a rewind: the
client asked for what is retained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidRewindError

__all__ = ["EARLIEST", "MAX_REWIND_EVENTS", "MAX_REWIND_SECONDS", "Rewind", "parse_rewind"]

#: The most events ``rewind=N`` may ask for.
MAX_REWIND_EVENTS = 10_000
#: The longest ``rewind=DURATION`` (one week).
MAX_REWIND_SECONDS = 7 * 24 * 3600.0

_COUNT = re.compile(r"[0-9]{1,9}")
_DURATION = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,6})?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Rewind:
    """How far back a fresh stream starts: all retained, ``events`` or ``seconds``.

    Exactly one of ``events`` / ``seconds`` is set, or neither (everything retained).
    """

    events: int | None = None
    seconds: float | None = None


#: Everything the store still holds.
EARLIEST = Rewind()


def parse_rewind(since: str | None, rewind: str | None) -> Rewind | None:
    """The :class:`Rewind` a request asked for (``None``: none).

    Raises :class:`~ssehub.errors.InvalidRewindError` for any other value.
    """
    if since is not None and rewind is not None:
        raise InvalidRewindError("give since=earliest or rewind=…, not both")
    if since is not None:
        if since != "earliest":
            raise InvalidRewindError("since must be 'earliest' (use Last-Event-ID to resume)")
        return EARLIEST
    if rewind is None:
        return None
    if _COUNT.fullmatch(rewind):
        count = int(rewind)
        if not 1 <= count <= MAX_REWIND_EVENTS:
            raise InvalidRewindError(f"rewind=N needs 1 <= N <= {MAX_REWIND_EVENTS}")
        return Rewind(events=count)
    match = _DURATION.fullmatch(rewind)
    if match is None:
        raise InvalidRewindError(
            "rewind must be a count (rewind=50) or a duration (rewind=30s, 5m, 1h)"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_REWIND_SECONDS:
        raise InvalidRewindError(
            f"a rewind duration must be above 0 and at most {MAX_REWIND_SECONDS:g} s"
        )
    return Rewind(seconds=seconds)
