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

from ..errors import EncodeError
from ._events import ServerSentEvent

__all__ = ["encode", "encode_comment"]

_MAX_RETRY = 2**64 - 1  # receivers ignore anything larger (Chromium: ToUInt64Strict)


def _lf_lines(text: str) -> str:
    """``text`` with CRLF and lone CR turned into LF: the line ends a receiver sees."""
    if "\r" in text:
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _check_text(name: str, value: object) -> str:
    if type(value) is not str:
        raise EncodeError(f"{name} must be a str, not {type(value).__name__}: {value!r}")
    return value


def _check_line(name: str, value: object) -> str:
    text = _check_text(name, value)
    if "\n" in text or "\r" in text:
        raise EncodeError(f"{name} must not contain CR or LF: {text!r}")
    return text


def _to_utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise EncodeError(f"text is not encodable as UTF-8: {exc}") from exc


def _comment_lines(text: str) -> str:
    lines = _lf_lines(_check_text("comment", text)).split("\n")
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
    head = "" if event.comment is None else _comment_lines(event.comment)
    if event.event is not None:
        head += f"event: {_check_line('event', event.event)}\n"
    if event.id is not None:
        event_id = _check_line("id", event.id)
        if "\x00" in event_id:
            raise EncodeError(f"id must not contain NUL: {event_id!r}")
        head += f"id: {event_id}\n" if event_id else "id\n"
    retry = event.retry
    if retry is not None:
        if type(retry) is not int or not 0 <= retry <= _MAX_RETRY:
            raise EncodeError(
                f"retry must be a non-negative int of milliseconds below 2**64: {retry!r}"
            )
        head += f"retry: {retry}\n"
    if event.data is None:
        return _to_utf8(head + "\n")  # a control event: dispatches nothing
    body = _lf_lines(_check_text("data", event.data)).replace("\n", "\ndata: ")
    return _to_utf8(f"{head}data: {body}\n\n")
