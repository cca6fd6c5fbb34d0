"""Chunk boundaries never change what the parser sees.

Every split of a stream (every split point, one byte at a time, random
splits) must give the events that feeding it whole gives, and both must equal
``reference_parse``, the standard's algorithm run on the whole stream.  The
random streams are built from the pieces that make parsers trip: every line
end, BOMs, split and invalid UTF-8, NUL, comments, colons and spaces, and the
usual ``event``/``id``/``data`` shape that the parser takes on a fast path.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub.protocol import EventStreamParser
from tests.support.streams import BOM, CORPUS, Outcome, parse_chunks, reference_parse


def split_at(stream: bytes, points: list[int]) -> list[bytes]:
    cuts = [0, *sorted(points), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(cuts)]


SMALL = {name: b"".join(chunks) for name, chunks in CORPUS.items() if sum(map(len, chunks)) < 400}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_split_point_gives_the_same_events(name: str) -> None:
    stream = SMALL[name]
    whole = parse_chunks([stream])
    assert whole == reference_parse(stream)
    for point in range(len(stream) + 1):
        assert parse_chunks(split_at(stream, [point])) == whole, point


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_one_byte_at_a_time_gives_the_same_events(name: str) -> None:
    stream = b"".join(CORPUS[name])
    assert parse_chunks([stream[i : i + 1] for i in range(len(stream))]) == reference_parse(stream)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_chunks_give_the_reference_events(name: str) -> None:
    assert parse_chunks(CORPUS[name]) == reference_parse(b"".join(CORPUS[name]))


# -- random streams ------------------------------------------------------------------------

line_ends = st.sampled_from([b"\n", b"\r", b"\r\n"])
names = st.sampled_from(
    [b"data", b"event", b"id", b"retry", b"Data", b"dat", b"data ", b" data", b"\xef\xbb\xbfdata"]
)
separators = st.sampled_from([b":", b": ", b":  ", b"", b"::"])
values = st.one_of(
    st.text(max_size=12).map(str.encode),
    st.sampled_from(
        [
            b"",
            b"0",
            b"42",
            b"+5",
            b" 5",
            b"1_000",
            "\uff15".encode(),
            b"a\x00b",
            b"\xff",
            b"\xe2\x82",
        ]
    ),
    st.binary(max_size=6),
)
field_lines = st.tuples(names, separators, values).map(lambda t: b"".join(t))
comment_lines = values.map(lambda v: b":" + v)
simple_events = st.tuples(
    st.one_of(st.just(b""), values.map(lambda v: b"event: " + v.replace(b"\n", b"") + b"\n")),
    st.one_of(st.just(b""), st.integers(0, 10**6).map(lambda n: b"id: %d\n" % n)),
    st.text(max_size=20).map(lambda t: b"data: " + t.encode() + b"\n\n"),
).map(lambda t: b"".join(t))
pieces = st.one_of(
    st.tuples(st.one_of(field_lines, comment_lines, st.just(b"")), line_ends).map(
        lambda t: t[0] + t[1]
    ),
    simple_events,
    st.binary(max_size=4),
)
streams = st.tuples(st.sampled_from([b"", BOM, BOM[:2], BOM + BOM]), st.lists(pieces)).map(
    lambda t: t[0] + b"".join(t[1])
)


@st.composite
def split_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    stream = draw(streams)
    points = draw(st.lists(st.integers(0, len(stream)), max_size=12))
    return stream, split_at(stream, points)


@settings(max_examples=400, deadline=None)
@given(split_streams())
def test_random_streams_split_anywhere_match_the_reference(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    expected = reference_parse(stream)
    assert parse_chunks([stream]) == expected
    assert parse_chunks(chunks) == expected


@settings(max_examples=100, deadline=None)
@given(streams)
def test_random_streams_one_byte_at_a_time_match_the_reference(stream: bytes) -> None:
    assert parse_chunks([stream[i : i + 1] for i in range(len(stream))]) == reference_parse(stream)


@settings(max_examples=100, deadline=None)
@given(streams, st.text(max_size=5).filter(lambda s: "\x00" not in s))
def test_seeded_last_event_id_matches_the_reference(stream: bytes, seed: str) -> None:
    expected = reference_parse(stream, last_event_id=seed)
    assert parse_chunks([stream], last_event_id=seed) == expected


@settings(max_examples=100, deadline=None)
@given(split_streams(), split_streams())
def test_two_streams_in_a_row_behave_as_two_connections(
    first: tuple[bytes, list[bytes]], second: tuple[bytes, list[bytes]]
) -> None:
    """After eof(), the next stream parses as a fresh one seeded with the last event ID."""
    parser = EventStreamParser()
    events = []
    for chunk in first[1]:
        events.extend(parser.feed(chunk))
    parser.eof()
    one = reference_parse(first[0])
    two = reference_parse(second[0], last_event_id=one.last_event_id)
    for chunk in second[1]:
        events.extend(parser.feed(chunk))
    assert [(e.event, e.data, e.id) for e in events] == one.events + two.events
    assert parser.last_event_id == two.last_event_id
    assert parser.retry == (two.retry if two.retry is not None else one.retry)


def test_outcome_compares_events_and_state() -> None:
    """The helper this file relies on does tell different outcomes apart."""
    assert parse_chunks([b"data: a\n\n"]) != parse_chunks([b"data: b\n\n"])
    assert parse_chunks([b"id: 1\n\n"]) == Outcome([], "1", None)
