"""The Durable Streams wire vocabulary: header names, offsets, cursors, strict numbers.

Conventions:

* An **offset** is ``{16 digits}_{16 digits}``: the first field is always zero
  (reserved), the second the stream position in stored bytes.  Fixed width,
  so offsets sort as text exactly as positions sort as numbers.  ``-1`` (the
  start) and ``now`` (the tail) are sentinels and never minted.
* A **cursor** is the number of 20 s intervals since 2024-10-09T00:00:00Z
  (PROTOCOL.md §10.1); when a client echoes one at or ahead of now, the
  answer jumps ahead by 1 s–1 h of jitter, so cursors never go backwards.
* Numbers in headers are decimal without sign, leading zeros or exponent.
"""

from __future__ import annotations

import random
import re
import time
from datetime import datetime

__all__ = [
    "MAX_SAFE_INTEGER",
    "OFFSET_WIDTH",
    "format_offset",
    "parse_expires_at",
    "parse_offset",
    "parse_strict_int",
    "response_cursor",
]

#: Largest producer epoch / seq accepted (JavaScript's Number.MAX_SAFE_INTEGER).
MAX_SAFE_INTEGER = 2**53 - 1
OFFSET_WIDTH = 16
_OFFSET = re.compile(r"([0-9]{1,16})_([0-9]{1,16})")
_STRICT_INT = re.compile(r"0|[1-9][0-9]{0,15}")
_CURSOR_EPOCH = 1728432000.0  # 2024-10-09T00:00:00Z
_CURSOR_INTERVAL = 20


def format_offset(position: int) -> str:
    """The offset of ``position`` (bytes into the stream)."""
    return f"{0:0{OFFSET_WIDTH}d}_{position:0{OFFSET_WIDTH}d}"


def parse_offset(text: str) -> int | None:
    """The position an offset names, or ``None`` if it is not one of ours."""
    match = _OFFSET.fullmatch(text)
    return int(match.group(2)) if match else None


def parse_strict_int(text: str, maximum: int = MAX_SAFE_INTEGER) -> int | None:
    """A header's non-negative decimal integer, or ``None`` (``+1``, ``01``, ``1e3``, ``1.0``)."""
    if not _STRICT_INT.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None


def parse_expires_at(text: str) -> float | None:
    """An RFC 3339 timestamp as a Unix time, or ``None`` if it is not one (no zone: UTC)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp()


def response_cursor(
    client: str | None, now: float | None = None, rng: random.Random | None = None
) -> str:
    """The ``Stream-Cursor`` of a live answer, given the one the client echoed."""
    current = int(((time.time() if now is None else now) - _CURSOR_EPOCH) // _CURSOR_INTERVAL)
    if client is None or not client.isdigit() or len(client) > 18:
        return str(current)
    echoed = int(client)
    if echoed < current:
        return str(current)
    jitter = (rng or random).randint(1, 3600)
    return str(echoed + max(1, -(-jitter // _CURSOR_INTERVAL)))
