"""EventStreamParser against the WHATWG HTML standard, rule by rule.

Every row cites the step of "9.2.5 Parsing an event stream" or "9.2.6
Interpreting an event stream" (https://html.spec.whatwg.org/multipage/
server-sent-events.html) that it checks; where the standard leaves room, the
row says what Chromium's EventSourceParser does, which is what we follow.
Each row is fed as the given chunks, then ``eof()``.
"""

from __future__ import annotations

import pytest

from ssehub.protocol import Event, EventStreamParser
from tests.support.streams import BOM, EMOJI, EURO, parse_chunks

M = "message"

# (spec step, chunks, events as (type, data, id), last_event_id, retry)
ROWS = [
    # -- 9.2.5: decoding and line ends ----------------------------------------------------
    pytest.param(
        "9.2.5 end-of-line = LF",
        [b"data: a\n\n"],
        [(M, "a", "")],
        "",
        None,
        id="lf-ends-a-line",
    ),
    pytest.param(
        "9.2.5 end-of-line = CR LF",
        [b"data: a\r\n\r\n"],
        [(M, "a", "")],
        "",
        None,
        id="crlf-ends-a-line",
    ),
    pytest.param(
        "9.2.5 end-of-line = CR",
        [b"data: a\r\r"],
        [(M, "a", "")],
        "",
        None,
        id="cr-ends-a-line",
    ),
    pytest.param(
        "9.2.5 end-of-line: CR LF is one line end, not two",
        [b"data: a\r\ndata: b\r\n\r\n"],
        [(M, "a\nb", "")],
        "",
        None,
        id="crlf-is-one-line-end",
    ),
    pytest.param(
        "9.2.5 end-of-line: a CR LF split across chunks is still one line end",
        [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
        [(M, "a\nb", "")],
        "",
        None,
        id="cr-lf-split-across-chunks",
    ),
    pytest.param(
        "9.2.5 end-of-line: LF after a CR that ended a chunk, then a lone CR",
        [b"data: a\r", b"\n", b"\r"],
        [(M, "a", "")],
        "",
        None,
        id="cr-lf-split-then-lone-cr",
    ),
    pytest.param(
        "9.2.5 streams are decoded with UTF-8 decode: a character split across chunks",
        [b"data: " + EMOJI[:2], EMOJI[2:] + EURO[:1], EURO[1:] + b"\n\n"],
        [(M, "😀€", "")],
        "",
        None,
        id="utf8-character-split-across-chunks",
    ),
    pytest.param(
        "9.2.5 UTF-8 decode replaces invalid bytes with U+FFFD",
        [b"data: \xff\xc3(\xed\xa0\x80\n\n"],
        [(M, "\ufffd\ufffd(\ufffd\ufffd\ufffd", "")],
        "",
        None,
        id="invalid-utf8-becomes-replacement-characters",
    ),
    pytest.param(
        "9.2.5 UTF-8 decode: a sequence cut by a line end becomes U+FFFD",
        [b"data: \xe2\x82", b"\n\n"],
        [(M, "\ufffd", "")],
        "",
        None,
        id="truncated-utf8-before-line-end",
    ),
    pytest.param(
        "9.2.5 UTF-8 decode strips one leading BOM",
        [BOM + b"data: a\n\n"],
        [(M, "a", "")],
        "",
        None,
        id="leading-bom-dropped",
    ),
    pytest.param(
        "9.2.5 UTF-8 decode strips one leading BOM, even split across chunks",
        [BOM[:1], BOM[1:2], BOM[2:], b"data: a\n\n"],
        [(M, "a", "")],
        "",
        None,
        id="bom-split-across-chunks-dropped",
    ),
    pytest.param(
        "9.2.5 the BOM is stripped by the decoder, before lines are read: a line end right "
        "after it is a blank line (Chromium 156 differs: KNOWN_DIFFERENCES in tests/browser)",
        [BOM + b"\ndata: x\n\n", b"\xef\xbb\xbf"],
        [(M, "x", "")],
        "",
        None,
        id="line-end-right-after-bom",
    ),
    pytest.param(
        "9.2.5 stream = [ bom ] *event: a second BOM is part of the first field name",
        [BOM + BOM + b"data: a\n\ndata: b\n\n"],
        [(M, "b", "")],
        "",
        None,
        id="second-bom-kept",
    ),
    pytest.param(
        "9.2.5 stream = [ bom ] *event: a BOM after the start is not dropped",
        [b"data: a\n\n" + BOM + b"data: b\n\n"],
        [(M, "a", "")],
        "",
        None,
        id="bom-after-start-kept",
    ),
    # -- 9.2.6: lines ----------------------------------------------------------------------
    pytest.param(
        "9.2.6 'If the line starts with a U+003A COLON character (:)': ignore the line",
        [b": comment\n:\ndata: a\n:: x\n\n"],
        [(M, "a", "")],
        "",
        None,
        id="comments-ignored",
    ),
    pytest.param(
        "9.2.6 'Otherwise, the string is not empty but does not contain a colon': "
        "the whole line is the field name, the value is empty",
        [b"data\n\n"],
        [(M, "", "")],
        "",
        None,
        id="line-without-colon-is-field-with-empty-value",
    ),
    pytest.param(
        "9.2.6 'If value starts with a U+0020 SPACE character, remove it': exactly one",
        [b"data:a\n\ndata:  b\n\ndata:\tc\n\n"],
        [(M, "a", ""), (M, " b", ""), (M, "\tc", "")],
        "",
        None,
        id="exactly-one-space-after-colon-removed",
    ),
    pytest.param(
        "9.2.6 'collect the characters on the line before the first colon': the rest is value",
        [b"data: a: b:c\n\n"],
        [(M, "a: b:c", "")],
        "",
        None,
        id="value-keeps-later-colons",
    ),
    pytest.param(
        "9.2.6 process the field, 'Otherwise': the field is ignored (names are case-sensitive)",
        [b"Data: x\ndata : y\n data: z\nfoo: bar\ndata: a\n\n"],
        [(M, "a", "")],
        "",
        None,
        id="unknown-fields-ignored",
    ),
    pytest.param(
        "9.2.6 data: 'Append the field value to the data buffer, then append a single LF'",
        [b"data: a\ndata\ndata: b\n\n"],
        [(M, "a\n\nb", "")],
        "",
        None,
        id="data-lines-joined-with-lf",
    ),
    pytest.param(
        "9.2.6 dispatch step 3: 'If the data buffer's last character is a LF, remove it'",
        [b"data\ndata\n\n"],
        [(M, "\n", "")],
        "",
        None,
        id="only-the-last-lf-removed",
    ),
    pytest.param(
        "9.2.5 the data is text, not lines: U+2028, FF, VT, NEL are no line ends",
        ["data: a\u2028b\x0cc\x0bd\x85e\u2029f\n\n".encode()],
        [(M, "a\u2028b\x0cc\x0bd\x85e\u2029f", "")],
        "",
        None,
        id="only-cr-and-lf-end-lines",
    ),
    pytest.param(
        "9.2.6 any character but CR and LF may be in a value, NUL included",
        [b"data: a\x00b\n\n"],
        [(M, "a\x00b", "")],
        "",
        None,
        id="nul-in-data-kept",
    ),
    # -- 9.2.6: dispatch -------------------------------------------------------------------
    pytest.param(
        "9.2.6 dispatch step 2: 'If the data buffer is an empty string, set the data "
        "buffer and the event type buffer to the empty string and return'",
        [b"event: x\n\nid: 1\n\n\n\n"],
        [],
        "1",
        None,
        id="no-dispatch-without-data",
    ),
    pytest.param(
        "9.2.6 dispatch step 1 runs before step 2: an id and a blank line set the last "
        "event ID with no event (Chromium: last_event_id_ = id_ before the data check)",
        [b"id: 7\n\ndata: a\n\n"],
        [(M, "a", "7")],
        "7",
        None,
        id="id-then-blank-line-sets-last-event-id",
    ),
    pytest.param(
        "9.2.6 dispatch step 5: type is the event type buffer, 'message' if empty",
        [b"event: custom\ndata: a\n\nevent:\ndata: b\n\nevent\ndata: c\n\n"],
        [("custom", "a", ""), (M, "b", ""), (M, "c", "")],
        "",
        None,
        id="event-type-or-message",
    ),
    pytest.param(
        "9.2.6 dispatch step 6: 'Set the data buffer and the event type buffer to the "
        "empty string': the type does not leak into the next event",
        [b"event: custom\ndata: a\n\ndata: b\n\n"],
        [("custom", "a", ""), (M, "b", "")],
        "",
        None,
        id="event-type-reset-after-dispatch",
    ),
    pytest.param(
        "9.2.6 dispatch step 2 also resets the event type buffer when nothing is dispatched",
        [b"event: lost\n\ndata: a\n\n"],
        [(M, "a", "")],
        "",
        None,
        id="event-type-reset-without-dispatch",
    ),
    pytest.param(
        "9.2.6 event: the last event field before the blank line wins",
        [b"event: one\nevent: two\ndata: a\n\n"],
        [("two", "a", "")],
        "",
        None,
        id="last-event-field-wins",
    ),
    # -- 9.2.6: id -------------------------------------------------------------------------
    pytest.param(
        "9.2.6 dispatch step 1: the last event ID buffer is not reset, so the ID "
        "persists across events",
        [b"id: 1\ndata: a\n\ndata: b\n\n"],
        [(M, "a", "1"), (M, "b", "1")],
        "1",
        None,
        id="last-event-id-persists",
    ),
    pytest.param(
        "9.2.6 id: 'If the field value does not contain U+0000 NULL, then set the last "
        "event ID buffer to the field value. Otherwise, ignore the field'",
        [b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"],
        [(M, "a", "1"), (M, "b", "1")],
        "1",
        None,
        id="id-with-nul-ignored",
    ),
    pytest.param(
        "9.2.6 id: an empty value sets the buffer to '': it resets the last event ID",
        [b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n"],
        [(M, "a", "1"), (M, "b", ""), (M, "c", "2"), (M, "d", "")],
        "",
        None,
        id="empty-id-resets",
    ),
    pytest.param(
        "9.2.6 the last event ID string is set only at a blank line: an id whose "
        "event never ends is not taken",
        [b"id: 1\ndata: a\n\nid: 2\ndata: b"],
        [(M, "a", "1")],
        "1",
        None,
        id="id-of-unfinished-event-not-taken",
    ),
    pytest.param(
        "9.2.6 the id line may come anywhere in the event, after the data too",
        [b"data: a\nid: 5\n\n"],
        [(M, "a", "5")],
        "5",
        None,
        id="id-after-data",
    ),
    # -- 9.2.6: retry ----------------------------------------------------------------------
    pytest.param(
        "9.2.6 retry: 'If the field value consists of only ASCII digits, then interpret "
        "the field value as an integer in base ten'",
        [b"retry: 1500\ndata: a\n\nretry: 0042\n\n"],
        [(M, "a", "")],
        "",
        42,
        id="retry-ascii-digits",
    ),
    pytest.param(
        "9.2.6 retry: a value too big for 64 bits is ignored (Chromium: ToUInt64Strict)",
        [b"retry: 7\n\nretry: 18446744073709551616\n\nretry: " + b"9" * 5000 + b"\n\n"],
        [],
        "",
        7,
        id="retry-beyond-64-bits-ignored",
    ),
    pytest.param(
        "9.2.6 retry: the largest 64-bit value is taken",
        [b"retry: 18446744073709551615\n\n"],
        [],
        "",
        2**64 - 1,
        id="retry-max-64-bits",
    ),
    # -- 9.2.6: end of stream ---------------------------------------------------------------
    pytest.param(
        "9.2.6 'Once the end of the file is reached, any pending data must be discarded. "
        "(If the file ends in the middle of an event, before the final empty line, the "
        "incomplete event is not dispatched.)'",
        [b"data: a\n\ndata: b\n"],
        [(M, "a", "")],
        "",
        None,
        id="half-built-event-dropped-at-eof",
    ),
    pytest.param(
        "9.2.6 end of file: an unterminated last line is not a line",
        [b"data: a\n\ndata: b\n\r\ndata"],
        [(M, "a", ""), (M, "b", "")],
        "",
        None,
        id="unterminated-last-line-dropped",
    ),
]


@pytest.mark.parametrize(("step", "chunks", "events", "last_event_id", "retry"), ROWS)
def test_parser_follows_the_standard(
    step: str,
    chunks: list[bytes],
    events: list[tuple[str, str, str]],
    last_event_id: str,
    retry: int | None,
) -> None:
    outcome = parse_chunks(chunks)
    assert (outcome.events, outcome.last_event_id, outcome.retry) == (
        events,
        last_event_id,
        retry,
    ), step


@pytest.mark.parametrize(
    "value", ["+5", " 5", "1_000", "５", "", "5 ", "-1", "5x", "0x10", "1.5", "1e3", "٣"]
)
def test_retry_ignored_unless_only_ascii_digits(value: str) -> None:
    """9.2.6 retry: 'Otherwise, ignore the field' (int() would take several of these)."""
    parser = EventStreamParser()
    parser.feed(b"retry: 2000\n\n")
    # "retry: " + " 5" leaves " 5" once the one space after the colon is removed.
    assert parser.feed(("retry: " + value + "\ndata: x\n\n").encode()) == [
        Event(data="x", retry=2000)
    ]
    assert parser.retry == 2000


def test_cr_at_chunk_end_ends_the_line_at_once() -> None:
    """9.2.5: a CR is a line end by itself; the event comes out of the feed() with the CR."""
    parser = EventStreamParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\r") == [Event(data="a")]
    assert parser.feed(b"\n") == []  # the second half of CR LF, not another blank line
    assert parser.feed(b"data: b\n\r") == [Event(data="b")]
    assert parser.feed(b"\ndata: c\r\n\r\n") == [Event(data="c")]


def test_event_carries_the_retry_in_effect() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"data: a\n\nretry: 10\ndata: b\n\n") == [
        Event(data="a"),
        Event(data="b", retry=10),
    ]


def test_seeded_last_event_id_is_reported_until_changed() -> None:
    """A reconnecting client seeds the ID it sent as Last-Event-ID (Chromium does too)."""
    parser = EventStreamParser(last_event_id="41")
    assert parser.last_event_id == "41"
    assert parser.feed(b"data: a\n\nid: 42\ndata: b\n\n") == [
        Event(data="a", id="41"),
        Event(data="b", id="42"),
    ]


def test_eof_starts_a_new_stream_keeping_last_event_id_and_retry() -> None:
    """A new connection is a new stream; lastEventId and the reconnection time survive."""
    parser = EventStreamParser()
    parser.feed(b"id: 3\nretry: 500\nevent: e\ndata: a\n\nevent: half\nid: 4\ndata: lost\n\xe2")
    assert parser.eof() == []
    assert (parser.last_event_id, parser.retry) == ("3", 500)
    # The new stream: its BOM is dropped again; nothing of the old half-built event remains.
    assert parser.feed(BOM + b"\x82\xac\ndata: b\n\n") == [Event(data="b", id="3", retry=500)]


def test_eof_discards_a_pending_cr() -> None:
    parser = EventStreamParser()
    parser.feed(b"data: a\r")
    parser.eof()
    assert parser.feed(b"\ndata: b\n\n") == [Event(data="b")]  # the LF is a blank line


def test_feed_of_nothing_changes_nothing() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"") == []
    assert parser.feed(BOM[:2]) == []
    assert parser.feed(b"") == []
    assert parser.feed(BOM[2:] + b"data: a\n\n") == [Event(data="a")]


def test_feed_takes_bytearray_and_memoryview() -> None:
    parser = EventStreamParser()
    assert parser.feed(bytearray(b"data: a\n\n")) == [Event(data="a")]
    assert parser.feed(memoryview(b"data: \xe2\x82")) == []
    assert parser.feed(memoryview(b"\xac\n\n")) == [Event(data="€")]


@pytest.mark.parametrize("size", [0, -1])
def test_max_event_size_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="max_event_size"):
        EventStreamParser(max_event_size=size)
