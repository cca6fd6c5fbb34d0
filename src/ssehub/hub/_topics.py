"""Topic and event-type names: what the hub accepts."""

from __future__ import annotations

import re

from ..errors import InvalidEventError, InvalidTopicError
from ._cursor import RESET_EVENT

__all__ = ["MAX_TOPIC_LENGTH", "validate_event_type", "validate_topic"]

#: Longest topic name accepted, in characters.
MAX_TOPIC_LENGTH = 256
#: Longest event type accepted, in characters.
MAX_EVENT_TYPE_LENGTH = 128

# Segments of letters, digits (any script) and ._~:@-, joined by single slashes.
_SEGMENT = r"[\w.~:@\-]+"
_TOPIC = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")


def validate_topic(name: str) -> str:
    """Return ``name`` if it is a valid topic, else raise :class:`InvalidTopicError`.

    A topic is one or more segments separated by ``/`` (``chat/42``); a segment
    holds letters and digits of any script and ``. _ ~ : @ -``.  No empty
    segment, no leading or trailing slash, no ``.`` or ``..`` segment, at most
    :data:`MAX_TOPIC_LENGTH` characters.
    """
    if not name:
        raise InvalidTopicError("topic name is empty")
    if len(name) > MAX_TOPIC_LENGTH:
        raise InvalidTopicError(f"topic name is longer than {MAX_TOPIC_LENGTH} characters")
    if _TOPIC.fullmatch(name) is None or any(s in {".", ".."} for s in name.split("/")):
        raise InvalidTopicError(
            f"invalid topic name {name!r}: use segments of letters, digits and ._~:@- "
            "separated by single slashes"
        )
    return name


def validate_event_type(name: str | None) -> str | None:
    """Return a publishable event type, or raise :class:`~ssehub.errors.InvalidEventError`.

    Refuses CR, LF and NUL (they would forge fields on the wire), names longer
    than :data:`MAX_EVENT_TYPE_LENGTH`, and the reserved :data:`RESET_EVENT`.
    ``None`` and ``""`` both mean the default ``message`` type (``None`` is returned).
    """
    if name is None or name == "":
        return None
    if "\r" in name or "\n" in name or "\x00" in name:
        raise InvalidEventError("event type must not contain CR, LF or NUL")
    if len(name) > MAX_EVENT_TYPE_LENGTH:
        raise InvalidEventError(f"event type is longer than {MAX_EVENT_TYPE_LENGTH} characters")
    if name == RESET_EVENT:
        raise InvalidEventError(f"event type {RESET_EVENT!r} is reserved for the hub")
    return name
