"""Idempotency keys of :meth:`Backend.append`: syntax, window, and the replay rule.

A publisher that can't tell whether an append was stored (a timeout) retries
it with the same key; the store keeps one record per key and answers a repeat
with the first event instead of storing another.

Conventions, the same on every store:

* A key is 1 to :data:`MAX_KEY_LENGTH` visible ASCII characters (``!`` to
  ``~``; no spaces or control characters), compared exactly.
* A record holds the key, the event's ``seq`` and ``time`` and a SHA-256
  :func:`fingerprint` of ``(topic, data, event)``, never the data itself, so
  a record is at most a few hundred bytes whatever the event's size.
* A record lives :data:`IDEMPOTENCY_WINDOW` seconds (24 h) from the first
  append; after that the key is free again.  Stores may bound the records by
  count as well (the memory store does), and say so.
* A repeat with the same fingerprint returns the first event
  (``replayed=True``); with another fingerprint it raises
  :class:`~ssehub.errors.IdempotencyConflictError` and stores nothing.
* A record outlives its event: a repeat after retention removed the event
  still returns the first ``seq``.
"""

from __future__ import annotations

import hashlib
import json

from ...errors import IdempotencyConflictError, InvalidIdempotencyKeyError
from .._types import StoredEvent

__all__ = [
    "IDEMPOTENCY_WINDOW",
    "MAX_KEY_LENGTH",
    "fingerprint",
    "replay",
    "validate_idempotency_key",
]

#: How long (float seconds) a store remembers an idempotency key.
IDEMPOTENCY_WINDOW = 24 * 3600.0
#: The longest idempotency key accepted, in characters.
MAX_KEY_LENGTH = 128


def validate_idempotency_key(key: str) -> str:
    """Return ``key`` if it is 1-128 visible ASCII characters, else raise.

    Raises :class:`~ssehub.errors.InvalidIdempotencyKeyError` (a ``ValueError``).
    """
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidIdempotencyKeyError(
            f"an idempotency key must be 1 to {MAX_KEY_LENGTH} characters"
        )
    if not all("!" <= char <= "~" for char in key):
        raise InvalidIdempotencyKeyError(
            "an idempotency key may only hold visible ASCII characters (! to ~)"
        )
    return key


def fingerprint(topic: str, data: str, event: str | None, private: bool = False) -> str:
    """SHA-256 (hex) of the event's ``(topic, data, event)`` (and ``private`` when set).

    A public event's fingerprint is what it was before private events existed,
    so records written by an older version still match.
    """
    fields: list[object] = [topic, data, event]
    if private:
        fields.append(True)
    text = json.dumps(fields, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def replay(
    key: str,
    recorded: str,
    seq: int,
    time: float,
    topic: str,
    data: str,
    event: str | None,
    private: bool = False,
) -> StoredEvent:
    """The first event again for a repeated ``key`` whose record has fingerprint ``recorded``.

    Raises :class:`~ssehub.errors.IdempotencyConflictError` when the repeat
    differs from the first append.
    """
    if recorded != fingerprint(topic, data, event, private):
        raise IdempotencyConflictError(
            f"idempotency key {key!r} was already used for a different event "
            "(topic, data or event type); nothing was stored"
        )
    return StoredEvent(seq, topic, data, event, time, private, replayed=True)
