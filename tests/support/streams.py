"""Tricky event streams, and a reference parser to hold EventStreamParser to.

``CORPUS`` maps a name to a stream given as its chunks (the way a server
would write it, flushing after each).  The browser differential test serves
every one of them to Chromium; the chunking tests feed them at every split
point.  ``reference_parse`` is the standard's algorithm transcribed as
plainly as possible, on the whole stream at once: slow, but obviously right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ssehub.protocol import Event, EventStreamParser

BOM = b"\xef\xbb\xbf"
EMOJI = "😀".encode()  # 4 bytes
EURO = "€".encode()  # 3 bytes


def _chunks(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


CORPUS: dict[str, list[bytes]] = {
    "lf": [b"data: hello\n\n", b"data: world\n\n"],
    "crlf": [b"data: a\r\n\r\n", b"data: b\r\ndata: c\r\n\r\n"],
    "cr": [b"data: a\r\r", b"data: b\rdata: c\r\r"],
    "cr_then_lf_in_next_chunk": [b"data: a\r", b"\n\r", b"\ndata: b\r", b"\r", b"\ndata: c\n\n"],
    "mixed_line_ends": [b"data: 1\ndata: 2\r\ndata: 3\rdata: 4\r\n\n"],
    "utf8_split_across_chunks": [
        b"data: " + EMOJI[:1],
        EMOJI[1:3],
        EMOJI[3:] + EURO[:2],
        EURO[2:] + b"\n\n",
    ],
    "invalid_utf8": [
        b"data: \xff\xfeok\n\n",
        b"data: \xed\xa0\x80 surrogate\n\n",
        b"data: \xe2\x82\n\n",
    ],
    "truncated_utf8_before_line_end": [b"data: x\xe2\x82", b"\r\n\r\n"],
    "invalid_utf8_in_field_name": [b"da\xfft\xc3a: x\n\ndata: y\n\n"],
    "bom_dropped": [BOM + b"data: bom\n\n"],
    "bom_split_across_chunks": [BOM[:1], BOM[1:2], BOM[2:] + b"data: x\n\n"],
    "second_bom_kept": [BOM + BOM + b"data: x\n\ndata: y\n\n"],
    "bom_after_first_line_kept": [b"data: a\n\n" + BOM + b"data: b\n\ndata: c\n\n"],
    "comments": [b": comment\n:\ndata: x\n: between\n\n", b":only a comment\n\n"],
    "line_without_colon": [b"data\n\n", b"data\ndata\n\n"],
    "one_space_removed": [b"data:none\n\ndata:  two\n\ndata: \n\ndata:\t tab\n\n"],
    "unknown_fields_ignored": [b"foo: bar\nData: x\ndata : y\n data: z\ndata: ok\n\n"],
    "data_lines_joined_with_lf": [b"data: a\ndata\ndata: b\ndata:\n\n"],
    "event_type_reset_after_dispatch": [b"event: custom\ndata: 1\n\ndata: 2\n\n"],
    "event_type_reset_without_data": [
        b"event: lost\n\ndata: 3\n\nevent: custom\nevent: other\ndata: 4\n\n"
    ],
    "empty_event_type_is_message": [b"event:\ndata: e\n\nevent\ndata: f\n\n"],
    "unicode_and_spaced_types": [
        "event: événement\ndata: é\n\nevent: my event\ndata: s\n\n".encode()
    ],
    "last_event_id_persists_and_resets": [
        b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 2\ndata: d\n\nid:\ndata: e\n\n"
    ],
    "id_with_nul_ignored": [b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"],
    "id_then_blank_line_sets_last_event_id": [b"id: 7\n\n", b"data: x\n\nid: 8\n\n\n\ndata: y\n\n"],
    "id_without_blank_line_is_dropped_at_eof": [b"id: 5\ndata: a\n\nid: 6\ndata: lost"],
    "retry_fields_change_no_event": [b"retry: 1000\nretry: +5\nretry: 5x\nretry\ndata: r\n\n"],
    "half_built_event_dropped": [b"data: complete\n\ndata: incomplete\n"],
    "unterminated_last_line_dropped": [b"data: one\n\ndata: half"],
    "nul_and_colons_in_data": [b"data: a\x00b\n\ndata: a:b: c\n\ndata::\n\n"],
    "not_line_ends_in_data": ["data: a\u2028b\x0cc\x0bd\x85e\u2029f\x1cg\n\n".encode()],
    "blank_lines_first": [b"\n\n\r\n\rdata: x\n\n"],
    "simple_and_odd_shapes_mixed": [
        b"event: a\nid: 1\ndata: x\n\nid: 2\nevent: b\ndata: y\n\ndata: p\ndata: q\n\n"
        b"event: c\ndata: z\n\nid: 3\ndata: w\n\nevent:c\nid:4\ndata:v\n\n"
    ],
    "simple_events_split_anywhere": _chunks(
        b"".join(b'event: tok\nid: %d\ndata: {"t":"%d"}\n\n' % (i, i) for i in range(40)), 7
    ),
    "simple_events_around_the_fast_path_window": _chunks(
        b"".join(b"event: w\nid: %d\ndata: %s\n\n" % (n, b"y" * n) for n in range(4060, 4100, 7)),
        5000,
    ),
    "long_line_in_small_chunks": _chunks(b"data: " + b"x" * 70_000 + b"\n\n", 1024),
    "one_byte_at_a_time": _chunks(
        BOM + b"event: e\r\nid: 9\rdata: " + EURO + b"\r\n:c\n\r\ndata: z\n\n", 1
    ),
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a parser made of a stream: the events, then its final state."""

    events: list[tuple[str, str, str]]  # (type, data, last event ID)
    last_event_id: str
    retry: int | None


def parse_chunks(chunks: list[bytes], **options: object) -> Outcome:
    """Feed ``chunks`` to a fresh :class:`EventStreamParser`, then end the stream."""
    parser = EventStreamParser(**options)  # type: ignore[arg-type]
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.eof())
    return Outcome([(e.event, e.data, e.id) for e in events], parser.last_event_id, parser.retry)


_LINE_END = re.compile(r"\r\n|\r|\n")


def reference_parse(stream: bytes, last_event_id: str = "") -> Outcome:
    """The standard's algorithm, step by step, on the whole stream at once."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _LINE_END.split(text)
    lines.pop()  # what follows the last line end is not a line: never processed
    data, event_type, id_buffer = "", "", last_event_id
    last, retry = last_event_id, None
    events: list[tuple[str, str, str]] = []
    for line in lines:
        if line == "":
            last = id_buffer
            if data:
                events.append((event_type or "message", data.removesuffix("\n"), last))
            data = event_type = ""
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\x00" not in value:
                id_buffer = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            digits = value.lstrip("0") or "0"
            if len(digits) <= 20 and int(digits) < 2**64:
                retry = int(digits)
    return Outcome(events, last, retry)
