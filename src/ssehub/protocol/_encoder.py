"""The event-stream encoder: ``ServerSentEvent`` in, bytes out.

Conventions: output is UTF-8, every line ends with LF, and every event ends
with one blank line.  Field order is ``comment``, ``event``, ``id``, ``retry``,
``data``, so that a receiver sees the type and ID before the payload.  CR, LF
and CRLF in ``data`` (or in a comment) start a new ``data:`` (``:``) line, so
the receiver gets the text back with every line end turned into LF.  The
encoder never alters a value to make it fit: anything that would change the
meaning of the stream raises :class:`~ssehub.errors.EncodeError`.
"""

from __future__ import annotations

from typing import NoReturn

from ..errors import EncodeError
from ._events import ServerSentEvent

__all__ = ["encode", "encode_comment"]

_MAX_RETRY = 2**64 - 1  # receivers ignore anything larger (Chromium: ToUInt64Strict)


def _lf_lines(text: str) -> str:
    """``text`` with CRLF and lone CR turned into LF: the line ends a receiver sees."""
    if "\r" in text:
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _refuse(name: str, value: object) -> NoReturn:
    """Raise the :class:`EncodeError` that says why ``value`` can't be sent as ``name``."""
    if type(value) is not str:
        raise EncodeError(f"{name} must be a str, not {type(value).__name__}: {value!r}")
    raise EncodeError(f"{name} must not contain CR or LF: {value!r}")


def _to_utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise EncodeError(f"text is not encodable as UTF-8: {exc}") from exc


def _comment_lines(text: str) -> str:
    if type(text) is not str:
        _refuse("comment", text)
    lines = _lf_lines(text).split("\n")
    return "".join(f": {line}\n" if line else ":\n" for line in lines)


def encode_comment(text: str = "") -> bytes:
    """Encode a comment block (``:`` lines), e.g. a heartbeat.

    Multi-line text (CR, LF or CRLF) becomes several comment lines.  A comment
    dispatches nothing, so ``encode_comment()`` (a lone ``:`` line) is the
    cheapest heartbeat.
    """
    return _to_utf8(_comment_lines(text))


def encode(event: ServerSentEvent) -> bytes:
    """Encode one event, ending with the blank line that dispatches it.

    ``data`` (``""`` included) makes the receiver dispatch exactly one event;
    ``data=None`` sends no ``data:`` line, so nothing is dispatched but ``id``
    and ``retry`` still take effect (see :class:`ServerSentEvent`).  ``id=""``
    is sent as a bare ``id`` line, which resets the receiver's last event ID.

    Raises :class:`~ssehub.errors.EncodeError` for CR or LF in ``event`` or
    ``id``, NUL in ``id``, a ``retry`` that is not an ``int`` from 0 to
    2**64 - 1 (``bool`` is refused), a field of the wrong type, or text that is not valid
    Unicode (a lone surrogate).
    """
    data, event_type, event_id, retry, comment = (
        event.data,
        event.event,
        event.id,
        event.retry,
        event.comment,
    )
    head = "" if comment is None else _comment_lines(comment)
    if event_type is not None:
        if type(event_type) is not str or "\n" in event_type or "\r" in event_type:
            _refuse("event", event_type)
        head += f"event: {event_type}\n"
    if event_id is not None:
        if type(event_id) is not str or "\n" in event_id or "\r" in event_id:
            _refuse("id", event_id)
        if "\x00" in event_id:
            raise EncodeError(f"id must not contain NUL: {event_id!r}")
        head += f"id: {event_id}\n" if event_id else "id\n"
    if retry is not None:
        if type(retry) is not int or not 0 <= retry <= _MAX_RETRY:
            raise EncodeError(
                f"retry must be a non-negative int of milliseconds below 2**64: {retry!r}"
            )
        head += f"retry: {retry}\n"
    if data is None:
        return _to_utf8(head + "\n")  # a control event: dispatches nothing
    if type(data) is not str:
        _refuse("data", data)
    if "\r" in data:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in data:
        data = data.replace("\n", "\ndata: ")
    return _to_utf8(f"{head}data: {data}\n\n")
