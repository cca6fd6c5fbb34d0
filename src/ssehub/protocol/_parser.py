"""The incremental event-stream parser: bytes in, events out.

Follows the WHATWG HTML standard, "9.2.6 Interpreting an event stream", as
Chromium's ``EventSourceParser`` implements it.  Conventions:

* ``feed(data)`` returns the events whose blank line completed in ``data``;
  an event comes out of the very call that delivers its line end.  A CR at the
  end of a chunk ends the line at once; an LF starting the next chunk is then
  the second half of a CRLF and is skipped.
* Bytes are decoded as UTF-8 incrementally with U+FFFD replacement, so a
  character split across chunks is not damaged.  One BOM at the very start of
  the stream is dropped (a BOM split across chunks too); a second one is kept.
  A line end right after that BOM is a line end, as the standard says;
  Chromium 156 differs there (it skips the byte after a BOM when looking for
  line ends), see ``KNOWN_DIFFERENCES`` in the browser tests.
* A blank line always copies the last event ID buffer into ``last_event_id``,
  even when no event is dispatched (``id: 7`` then a blank line), as the
  standard and Chromium do.
* ``retry`` is taken only when the value is all ASCII digits; like Chromium, a
  value too big for 64 bits is ignored.
* ``eof()`` ends the stream: a half-built event and an unfinished line are
  discarded, and the parser is ready for the next connection's stream.  The
  last event ID and the reconnection time persist across streams, as they do
  on a browser's ``EventSource``.
* All state lives in this one class.  Work is linear in the input: each chunk
  is decoded and its line ends normalised once with ``str`` methods, lines are
  found with ``str.find``, and a line that spans chunks is joined once, when
  its line end arrives.  Events of the usual shape are taken by one
  regular-expression match each (see :meth:`EventStreamParser._interpret`).
"""

from __future__ import annotations

import codecs
import re
import sys

from ..errors import EventTooLargeError
from ._events import Event

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "EventStreamParser"]

#: Default bound, in characters, on one line and on one event's data buffer.
DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024

_BOM = "\ufeff"
_MAX_RETRY = 2**64 - 1
_utf8_decode = codecs.utf_8_decode

# One whole event of the usual shape, on text whose line ends are all LF:
# optional ``event``, optional ``id`` (without NUL), one ``data`` line, blank line.
_SIMPLE_EVENT = re.compile(r"(?:event: ?([^\n]*)\n)?(?:id: ?([^\x00\n]*)\n)?data: ?([^\n]*)\n\n")
# How far one fast-path attempt may look: longer events gain nothing from it.
_SIMPLE_WINDOW = 4096

# Events are built through the slot descriptors rather than the generated
# frozen ``__init__`` (four ``object.__setattr__`` calls): it is the hot path.
_new_event = object.__new__
_set_data = Event.__dict__["data"].__set__
_set_type = Event.__dict__["event"].__set__
_set_id = Event.__dict__["id"].__set__
_set_retry = Event.__dict__["retry"].__set__


def _retry_value(value: str) -> int | None:
    """The reconnection time in ``value``, or ``None`` if it must be ignored."""
    if not (value.isascii() and value.isdigit()):
        return None  # empty, a sign, a space, "_" or a non-ASCII digit
    digits = value.lstrip("0") or "0"
    if len(digits) > 20:
        return None  # int() would refuse over 4300 digits; Chromium drops > 2**64-1
    number = int(digits)
    return number if number <= _MAX_RETRY else None


class EventStreamParser:
    """Turn the bytes of one or more event streams into :class:`Event` objects.

    ``max_event_size`` bounds, in decoded characters, both one line and one
    event's data buffer (each data line's value plus its LF, as the standard
    builds it); past it :class:`~ssehub.errors.EventTooLargeError` is raised
    instead of memory growing without bound (``None``: no bound).  After that
    error the stream is discarded as by :meth:`eof`, and ``last_event_id`` is
    left as it was before the failing :meth:`feed`, so a reconnect resumes
    before any event that call had parsed but could not return.

    ``last_event_id`` seeds the last event ID, as a reconnecting client does.
    """

    def __init__(
        self,
        *,
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE,
        last_event_id: str = "",
    ) -> None:
        if max_event_size is not None and max_event_size < 1:
            raise ValueError(f"max_event_size must be positive or None: {max_event_size!r}")
        self.max_event_size = max_event_size
        #: The last event ID string: what a browser reports as ``lastEventId``.
        self.last_event_id = last_event_id
        #: The reconnection time in milliseconds, as last set by a ``retry`` field.
        self.retry: int | None = None
        self._start_stream()

    def _start_stream(self) -> None:
        self._undecoded = b""  # the start of a UTF-8 sequence split across chunks
        self._at_stream_start = True  # no text seen yet: a BOM may come
        self._skip_lf = False  # the last chunk ended with CR
        self._partial: list[str] = []  # pieces of a line that spans chunks
        self._partial_size = 0
        self._data: list[str] = []  # the data buffer, one item per data line
        self._data_size = 0
        self._event_type = ""
        self._id_buffer = self.last_event_id

    def feed(self, data: bytes) -> list[Event]:
        """Parse the next chunk of the stream; return the events it completed.

        Raises :class:`~ssehub.errors.EventTooLargeError` when a line or an
        event's data outgrows ``max_event_size`` (see the class docstring).
        """
        try:
            return self._feed(data)
        except EventTooLargeError:
            self._start_stream()
            raise

    def eof(self) -> list[Event]:
        """End the stream, discarding any half-built event; always returns ``[]``.

        Returns a list for symmetry with :meth:`feed`; by the standard nothing
        is dispatched at end of stream.  The parser then starts a new stream.
        """
        self._start_stream()
        return []

    def _join_pieces(self, pieces: list[str]) -> str:
        """Join the pieces of a line that spanned chunks (once per such line)."""
        return "".join(pieces)

    def _feed(self, data: bytes) -> list[Event]:
        if self._undecoded:
            data = self._undecoded + data
        text, consumed = _utf8_decode(data, "replace", False)
        self._undecoded = bytes(data[consumed:]) if consumed < len(data) else b""
        if not text:
            return []
        if self._at_stream_start:
            self._at_stream_start = False
            if text[0] == _BOM:
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")

        limit = sys.maxsize if self.max_event_size is None else self.max_event_size
        if self._partial:
            # The first line started in an earlier chunk.
            line_end = text.find("\n")
            size = self._partial_size + (len(text) if line_end < 0 else line_end)
            if size > limit:
                raise EventTooLargeError(size, limit)
            self._partial.append(text)
            if line_end < 0:
                self._partial_size = size
                return []
            text = self._join_pieces(self._partial)
            self._partial = []
            self._partial_size = 0
        fast_path = len(text) <= limit  # then no line and no data buffer in it can be too large
        if not fast_path:
            for line in text.split("\n"):
                if len(line) > limit:
                    raise EventTooLargeError(len(line), limit)
        events: list[Event] = []
        tail_start = self._interpret(text, events, limit, fast_path)
        if tail_start < len(text):
            self._partial = [text[tail_start:]]
            self._partial_size = len(text) - tail_start
        return events

    def _interpret(self, text: str, events: list[Event], limit: int, fast_path: bool) -> int:
        """Interpret the complete lines of ``text``; return where its unfinished tail starts.

        The hot path, so state is kept in locals.  With ``fast_path``, every event
        that starts on a fresh state (no data or type buffered), has the usual
        shape (``event``, ``id``, one ``data`` line, in that order, each optional
        but data) and fits in ``_SIMPLE_WINDOW`` characters is taken in one
        regular-expression match.  Everything else goes line by line, and a
        ``data: `` line is sliced straight out of ``text`` (one copy of a huge
        value, not three).  Both give the same result; the tests hold them to that.
        """
        data = self._data
        data_size = self._data_size
        event_type = self._event_type
        id_buffer = self._id_buffer
        last_event_id = self.last_event_id
        retry = self.retry
        match_simple_event = _SIMPLE_EVENT.match
        find = text.find
        startswith = text.startswith
        pos = 0
        while True:
            if fast_path and not data and not event_type:
                match = match_simple_event(text, pos, pos + _SIMPLE_WINDOW)
                while match is not None:
                    simple_type, simple_id, simple_data = match.groups()
                    if simple_id is not None:
                        id_buffer = simple_id
                    last_event_id = id_buffer
                    event = _new_event(Event)
                    _set_data(event, simple_data)
                    _set_type(event, simple_type or "message")
                    _set_id(event, last_event_id)
                    _set_retry(event, retry)
                    events.append(event)
                    pos = match.end()
                    match = match_simple_event(text, pos, pos + _SIMPLE_WINDOW)
            line_end = find("\n", pos)
            if line_end < 0:
                break
            start = pos
            pos = line_end + 1
            if line_end == start:
                # A blank line: dispatch the event.
                last_event_id = id_buffer
                if data:
                    event = _new_event(Event)
                    _set_data(event, "\n".join(data))
                    _set_type(event, event_type or "message")
                    _set_id(event, last_event_id)
                    _set_retry(event, retry)
                    events.append(event)
                    data = []
                    data_size = 0
                event_type = ""
                continue
            if startswith("data: ", start, line_end):
                name = "data"
                value = text[start + 6 : line_end]
            else:
                name, _, value = text[start:line_end].partition(":")
                if not name:
                    continue  # a comment: the line starts with ":"
                if value[:1] == " ":
                    value = value[1:]
            if name == "data":
                data_size += len(value) + 1
                if data_size > limit:
                    raise EventTooLargeError(data_size, limit)
                data.append(value)
            elif name == "event":
                event_type = value
            elif name == "id":
                if "\x00" not in value:
                    id_buffer = value
            elif name == "retry":
                parsed = _retry_value(value)
                if parsed is not None:
                    retry = self.retry = parsed
            # Any other field is ignored.
        self._data = data
        self._data_size = data_size
        self._event_type = event_type
        self._id_buffer = id_buffer
        self.last_event_id = last_event_id
        return pos
