"""The incremental event-stream parser: bytes in, events out.

Follows the WHATWG HTML standard, "9.2.6 Interpreting an event stream", as
Chromium implements it.  Conventions:

* ``feed(data)`` returns the events whose blank line completed in ``data``;
  an event comes out of the very call that delivers its line end.  A CR at the
  end of a chunk ends the line at once; an LF starting the next chunk is then
  the second half of a CRLF and is skipped.
* Bytes are decoded as UTF-8 incrementally with U+FFFD replacement, so a
  character split across chunks is not damaged.  One BOM at the very start of
  the stream is dropped.
* ``eof()`` ends the stream: a half-built event and an unfinished line are
  discarded, and the parser is ready for the next connection's stream.  The
  last event ID and the reconnection time persist across streams, as they do
  on a browser's ``EventSource``.
* All state lives in this one class.  Work is linear in the input: chunk text
  is split with ``str`` methods and pieces are joined once per line and event.
"""

from __future__ import annotations

import codecs

from ..errors import EventTooLargeError
from ._events import Event

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "EventStreamParser"]

#: Default bound, in characters, on one line and on one event's data.
DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024

_BOM = "\ufeff"


class EventStreamParser:
    """Turn the bytes of one or more event streams into :class:`Event` objects.

    ``max_event_size`` bounds, in decoded characters, both one line and one
    event's data buffer; past it :class:`~ssehub.errors.EventTooLargeError` is
    raised instead of memory growing without bound (``None``: no bound).
    ``last_event_id`` seeds the last event ID, as a reconnecting client does.
    """

    def __init__(
        self,
        *,
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE,
        last_event_id: str = "",
    ) -> None:
        self.max_event_size = max_event_size
        #: The last event ID string: what a browser reports as ``lastEventId``.
        self.last_event_id = last_event_id
        #: The reconnection time in milliseconds, as last set by a ``retry`` field.
        self.retry: int | None = None
        self._start_stream()

    def _start_stream(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_stream_start = True
        self._skip_lf = False
        self._partial: list[str] = []
        self._partial_size = 0
        self._data: list[str] = []
        self._data_size = 0
        self._event_type = ""
        self._id_buffer = self.last_event_id

    def feed(self, data: bytes) -> list[Event]:
        """Parse the next chunk of the stream; return the events it completed."""
        text = self._decoder.decode(data)
        return self._feed_text(text)

    def eof(self) -> list[Event]:
        """End the stream, discarding any half-built event; always returns ``[]``.

        Returns a list for symmetry with :meth:`feed`; by the standard nothing
        is dispatched at end of stream.  The parser then starts a new stream.
        """
        self._start_stream()
        return []

    def _feed_text(self, text: str) -> list[Event]:
        if self._at_stream_start and text:
            self._at_stream_start = False
            if text[0] == _BOM:
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if not text:
            return []
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        tail = lines.pop()
        events: list[Event] = []
        if lines:
            if self._partial:
                self._partial.append(lines[0])
                self._check_size(self._partial_size + len(lines[0]))
                lines[0] = "".join(self._partial)
                self._partial = []
                self._partial_size = 0
            for line in lines:
                self._check_size(len(line))
                self._process_line(line, events)
        if tail:
            self._partial_size += len(tail)
            self._check_size(self._partial_size)
            self._partial.append(tail)
        return events

    def _check_size(self, size: int) -> None:
        limit = self.max_event_size
        if limit is not None and size > limit:
            raise EventTooLargeError(size, limit)

    def _process_line(self, line: str, events: list[Event]) -> None:
        if not line:
            self._dispatch(events)
            return
        colon = line.find(":")
        if colon == 0:
            return  # a comment
        if colon < 0:
            field, value = line, ""
        else:
            field = line[:colon]
            value = line[colon + 1 :]
            if value[:1] == " ":
                value = value[1:]
        if field == "data":
            self._data_size += len(value) + 1
            self._check_size(self._data_size)
            self._data.append(value)
        elif field == "event":
            self._event_type = value
        elif field == "id":
            if "\x00" not in value:
                self._id_buffer = value
        elif field == "retry":
            if value and value.isascii() and value.isdigit():
                self.retry = int(value)
        # Any other field is ignored.

    def _dispatch(self, events: list[Event]) -> None:
        self.last_event_id = self._id_buffer
        if not self._data:
            self._event_type = ""
            return
        events.append(
            Event(
                data="\n".join(self._data),
                event=self._event_type or "message",
                id=self.last_event_id,
                retry=self.retry,
            )
        )
        self._data = []
        self._data_size = 0
        self._event_type = ""
