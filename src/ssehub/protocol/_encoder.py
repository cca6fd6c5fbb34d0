"""The event-stream encoder: ``ServerSentEvent`` in, bytes out.

Conventions: output is UTF-8, every line ends with LF, and every event ends
with one blank line.  Field order is ``comment``, ``event``, ``id``, ``retry``,
``data``, so that a receiver sees the type and ID before the payload.  The
encoder never alters a value to make it fit: anything that would change the
meaning of the stream raises :class:`~ssehub.errors.EncodeError`.
"""

from __future__ import annotations

import re

from ..errors import EncodeError
from ._events import ServerSentEvent

__all__ = ["encode", "encode_comment"]

# Line ends as the parser sees them: CRLF, lone CR, lone LF.
_LINE_END = re.compile(r"\r\n|\r|\n")
_CR_OR_LF = re.compile(r"[\r\n]")


def _check_field(name: str, value: str, *, forbid_nul: bool = False) -> None:
    if _CR_OR_LF.search(value):
        raise EncodeError(f"{name} must not contain CR or LF: {value!r}")
    if forbid_nul and "\x00" in value:
        raise EncodeError(f"{name} must not contain NUL: {value!r}")


def encode_comment(text: str = "") -> bytes:
    """Encode a comment block (``:`` lines), e.g. a heartbeat.

    Multi-line text becomes several comment lines.  A comment dispatches
    nothing, so ``encode_comment()`` (a lone ``:``) is the cheapest heartbeat.
    """
    lines = _LINE_END.split(text)
    return "".join(f":{' ' if line else ''}{line}\n" for line in lines).encode("utf-8")


def encode(event: ServerSentEvent) -> bytes:
    """Encode one event, ending with the blank line that dispatches it.

    An event with only a ``comment`` and/or ``retry`` (no data, type or id) is
    encoded without ``data:`` so that it dispatches nothing.  Raises
    :class:`~ssehub.errors.EncodeError` for CR/LF in ``event``/``id``/, NUL in
    ``id``, or a ``retry`` that is not a non-negative ``int``.
    """
    parts: list[str] = []
    if event.comment is not None:
        parts.append(encode_comment(event.comment).decode("utf-8"))
    if event.event is not None:
        _check_field("event", event.event)
        parts.append(f"event: {event.event}\n")
    if event.id is not None:
        _check_field("id", event.id, forbid_nul=True)
        parts.append(f"id: {event.id}\n" if event.id else "id\n")
    if event.retry is not None:
        if type(event.retry) is not int or event.retry < 0:
            raise EncodeError(f"retry must be a non-negative int of milliseconds: {event.retry!r}")
        parts.append(f"retry: {event.retry}\n")
    control_only = (
        event.data == ""
        and event.event is None
        and event.id is None
        and (event.comment is not None or event.retry is not None)
    )
    if not control_only:
        parts.extend(f"data: {line}\n" for line in _LINE_END.split(event.data))
    parts.append("\n")
    return "".join(parts).encode("utf-8")
