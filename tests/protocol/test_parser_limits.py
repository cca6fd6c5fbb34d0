"""The parser's size bound, and proof that its work is linear in the input.

No wall clock anywhere: linearity is shown with deterministic counts.  The
parser does two kinds of work per chunk: Python steps (counted with
``sys.settrace``, line events inside the parser module) and C-level copies of
text (``str`` methods on the chunk, plus one join of the pieces of a line that
spans chunks, counted through the ``_join_pieces`` hook).  A quadratic parser
shows in one or the other: re-joining or re-scanning the pieces so far on every
chunk, or looping over them in Python.  And whatever the implementation, a copy
needs a new object to copy into: ``tracemalloc`` measures, per ``feed()``, how
far memory rose above where it started, and the sum over all calls bounds the
bytes copied.  Growing a string by ``+=`` on each chunk would make that sum
quadratic.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

import ssehub.protocol._parser as parser_module
from ssehub.errors import EventTooLargeError, RemoteProtocolError
from ssehub.protocol import DEFAULT_MAX_EVENT_SIZE, Event, EventStreamParser

MIB = 1024 * 1024


def chunked(stream: bytes, size: int) -> Iterator[bytes]:
    return (stream[i : i + size] for i in range(0, len(stream), size))


def feed_all(parser: EventStreamParser, chunks: Iterator[bytes] | list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


class CountingParser(EventStreamParser):
    """Counts the characters copied when joining the pieces of long lines."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.joins = 0
        self.joined_chars = 0

    def _join_pieces(self, pieces: list[str]) -> str:
        self.joins += 1
        self.joined_chars += sum(map(len, pieces))
        return super()._join_pieces(pieces)


def python_steps(parser: EventStreamParser, chunks: Iterator[bytes]) -> tuple[int, list[Event]]:
    """Feed ``chunks``; count the lines of parser code executed meanwhile."""
    steps = 0
    source = parser_module.__file__

    def local(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal steps
        if event == "line":
            steps += 1
        return local

    def outer(frame: FrameType, event: str, arg: object) -> Any:
        return local if frame.f_code.co_filename == source else None

    previous = sys.gettrace()  # coverage's tracer, when measuring
    sys.settrace(outer)
    try:
        events = feed_all(parser, chunks)
    finally:
        sys.settrace(previous)
    return steps, events


def bytes_fed_until_too_large(parser: EventStreamParser, chunks: Iterator[bytes]) -> int:
    """Feed ``chunks`` until EventTooLargeError; return how many bytes it took."""
    fed = 0
    for chunk in chunks:
        fed += len(chunk)
        try:
            parser.feed(chunk)
        except EventTooLargeError:
            return fed
    raise AssertionError("EventTooLargeError was not raised")


def allocated_per_feed(parser: EventStreamParser, chunks: Iterator[bytes]) -> tuple[int, Event]:
    """Feed ``chunks``; sum over the calls of each call's peak memory rise (bytes)."""
    total = 0
    events: list[Event] = []
    tracemalloc.start()
    try:
        for chunk in chunks:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            events.extend(parser.feed(chunk))
            _, peak = tracemalloc.get_traced_memory()
            total += peak - before
    finally:
        tracemalloc.stop()
    [event] = events
    return total, event


# -- the bound -----------------------------------------------------------------------------


def test_default_bound_is_16_mib() -> None:
    assert DEFAULT_MAX_EVENT_SIZE == 16 * MIB
    assert EventStreamParser().max_event_size == 16 * MIB


def test_too_long_line_in_one_chunk_raises() -> None:
    parser = EventStreamParser(max_event_size=100)
    with pytest.raises(EventTooLargeError) as caught:
        parser.feed(b": " + b"x" * 200 + b"\n")
    assert (caught.value.size, caught.value.limit) == (202, 100)
    assert isinstance(caught.value, RemoteProtocolError)


def test_too_long_line_across_chunks_raises_as_soon_as_it_passes_the_bound() -> None:
    parser = EventStreamParser(max_event_size=100)
    fed = bytes_fed_until_too_large(parser, chunked(b"data: " + b"x" * 1000, 10))
    assert fed == 110  # the first chunk that took the line past 100 characters


def test_too_long_first_line_of_a_chunk_raises() -> None:
    parser = EventStreamParser(max_event_size=100)
    parser.feed(b"data: " + b"x" * 90)
    with pytest.raises(EventTooLargeError):
        parser.feed(b"x" * 20 + b"\n\n")


def test_too_large_data_buffer_raises() -> None:
    """Many short data lines: no line is too long, the event is."""
    parser = EventStreamParser(max_event_size=100)
    with pytest.raises(EventTooLargeError) as caught:
        parser.feed(b"data: 123456789\n" * 11)
    assert caught.value.size == 110  # ten characters per line: nine digits and the LF


def test_too_large_data_buffer_across_chunks_raises() -> None:
    parser = EventStreamParser(max_event_size=100)
    with pytest.raises(EventTooLargeError):
        feed_all(parser, [b"data: 123456789\n"] * 11)


def test_a_chunk_larger_than_the_bound_is_fine_when_its_lines_are_small() -> None:
    parser = EventStreamParser(max_event_size=100)
    events = parser.feed(b"event: t\nid: 1\ndata: 123456789\n\n" * 20)
    assert len(events) == 20


def test_line_and_data_of_exactly_the_bound_pass() -> None:
    parser = EventStreamParser(max_event_size=100)
    line = b"data:" + b"x" * 95  # 100 characters; its data buffer is 96
    assert feed_all(parser, chunked(line + b"\n\n", 7)) == [Event(data="x" * 95)]
    lines = b"data:123456789\n" * 10  # data buffer: 10 x (9 + LF) = 100
    assert len(parser.feed(lines + b"\n")) == 1


def test_none_means_no_bound() -> None:
    parser = EventStreamParser(max_event_size=None)
    payload = b"x" * (DEFAULT_MAX_EVENT_SIZE + 1)
    [event] = parser.feed(b"data: " + payload + b"\n\n")
    assert len(event.data) == len(payload)


def test_default_bound_refuses_one_character_more() -> None:
    with pytest.raises(EventTooLargeError):
        EventStreamParser().feed(b"data:" + b"x" * DEFAULT_MAX_EVENT_SIZE + b"\n\n")


def test_after_the_error_the_stream_is_discarded_and_last_event_id_rolled_back() -> None:
    """Events parsed by the failing feed() are lost with it: resuming must not skip them."""
    parser = EventStreamParser(max_event_size=50)
    parser.feed(b"id: 1\ndata: a\n\nretry: 9\n")
    with pytest.raises(EventTooLargeError):
        parser.feed(b"id: 2\ndata: b\n\nid: 3\ndata: " + b"x" * 60)
    assert parser.last_event_id == "1"  # "2" was never returned to the caller
    # The parser starts afresh: nothing of the failed stream is left.
    assert parser.feed(b"\xef\xbb\xbfdata: c\n\n") == [Event(data="c", id="1", retry=9)]


def test_memory_does_not_grow_past_the_bound() -> None:
    """A never-ending line is refused after about max_event_size, then forgotten."""
    limit = 1 * MIB
    parser = EventStreamParser(max_event_size=limit)
    chunk = b"x" * 65536
    tracemalloc.start()
    try:
        parser.feed(b"data: ")
        fed = bytes_fed_until_too_large(parser, iter([chunk] * 64))  # 4 MiB offered
        _, peak = tracemalloc.get_traced_memory()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fed <= limit + len(chunk)
    assert peak < 2 * limit + 4 * len(chunk)
    assert current < 4 * len(chunk)  # the discarded line's pieces are released


# -- linear time ---------------------------------------------------------------------------


def test_a_long_line_is_joined_once() -> None:
    """8 MiB in 1 KiB chunks: its pieces are copied once, when its line end arrives."""
    n = 8 * MIB
    stream = b"data: " + b"x" * n + b"\n\n"
    parser = CountingParser()
    [event] = feed_all(parser, chunked(stream, 1024))
    assert len(event.data) == n
    assert parser.joins == 1
    assert parser.joined_chars <= len(stream)

    whole = CountingParser()
    assert whole.feed(stream) == [event]
    assert whole.joins == 0


def test_python_steps_grow_linearly_with_the_event() -> None:
    """The same chunk size, twice the event: twice the chunks, twice the steps, no more."""
    steps = {}
    for size in (4 * MIB, 8 * MIB):
        stream = b"data: " + b"x" * size + b"\n\n"
        steps[size], [event] = python_steps(EventStreamParser(), chunked(stream, 1024))
        assert len(event.data) == size
    per_chunk = steps[8 * MIB] / (8 * MIB // 1024)
    assert per_chunk < 40
    assert steps[8 * MIB] <= 2 * steps[4 * MIB] + 100


def test_many_data_lines_in_small_chunks_stay_linear() -> None:
    """An 8 MiB event of 100-character data lines: steps per line stay constant."""
    counts = {}
    for lines in (40_000, 80_000):
        stream = b"data: " + b"y" * 94 + b"\n"
        stream = stream * lines + b"\n"
        parser = CountingParser()
        counts[lines], [event] = python_steps(parser, chunked(stream, 1024))
        assert len(event.data) == lines * 95 - 1
        assert parser.joined_chars <= 2 * len(stream)
    assert counts[80_000] <= 2 * counts[40_000] + 100


def test_bytes_allocated_are_linear_in_the_event() -> None:
    """8 MiB in 1 KiB chunks allocates a few times 8 MiB in all, as fed whole does."""
    n = 8 * MIB
    stream = b"data: " + b"x" * n + b"\n\n"
    chunked_total, event = allocated_per_feed(EventStreamParser(), chunked(stream, 1024))
    whole_total, whole_event = allocated_per_feed(EventStreamParser(), iter([stream]))
    assert event == whole_event
    assert len(event.data) == n
    assert whole_total < 4 * n  # decoded text, data: a few copies
    assert chunked_total < 4 * n  # the same few copies, plus 1 KiB per chunk


def test_peak_memory_is_linear_in_the_event() -> None:
    n = 8 * MIB
    stream = b"data: " + b"x" * n + b"\n\n"
    parser = EventStreamParser()
    tracemalloc.start()
    try:
        [event] = feed_all(parser, chunked(stream, 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(event.data) == n
    assert peak < 3 * n  # the pieces, the joined line and the data: a few copies, no more
