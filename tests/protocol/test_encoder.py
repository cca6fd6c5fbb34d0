"""The encoder: exact bytes, refusals instead of cleaning, and no forged events.

The round-trip properties run the encoder's output through our parser, which
the conformance and browser tests hold to the standard and to Chromium.
"""

from __future__ import annotations

import itertools
from enum import IntEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub.errors import EncodeError, LocalProtocolError
from ssehub.protocol import Event, EventStreamParser, ServerSentEvent, encode, encode_comment


def parse(stream: bytes) -> tuple[list[Event], EventStreamParser]:
    parser = EventStreamParser(max_event_size=None)
    events = parser.feed(stream)
    parser.eof()
    return events, parser


# -- exact bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (ServerSentEvent(data="hello"), b"data: hello\n\n"),
        (ServerSentEvent(data=""), b"data: \n\n"),
        (ServerSentEvent(data="a\nb"), b"data: a\ndata: b\n\n"),
        (ServerSentEvent(data="a\rb"), b"data: a\ndata: b\n\n"),
        (ServerSentEvent(data="a\r\nb"), b"data: a\ndata: b\n\n"),
        (ServerSentEvent(data="a\n\r\rb\r\n"), b"data: a\ndata: \ndata: \ndata: b\ndata: \n\n"),
        (ServerSentEvent(data=" lead"), b"data:  lead\n\n"),
        (ServerSentEvent(data="a\x00b\u2028c"), "data: a\x00b\u2028c\n\n".encode()),
        (
            ServerSentEvent(data="d", event="e", id="7", retry=1500, comment="c"),
            b": c\nevent: e\nid: 7\nretry: 1500\ndata: d\n\n",
        ),
        (ServerSentEvent(data="x", id=""), b"id\ndata: x\n\n"),
        (ServerSentEvent(data="x", event=""), b"event: \ndata: x\n\n"),
        (ServerSentEvent(data="x", retry=0), b"retry: 0\ndata: x\n\n"),
        (ServerSentEvent(data="x", comment="a\nb\r\nc"), b": a\n: b\n: c\ndata: x\n\n"),
        (ServerSentEvent(data="é😀"), "data: é😀\n\n".encode()),
    ],
)
def test_encode_gives_exact_bytes(event: ServerSentEvent, wire: bytes) -> None:
    assert encode(event) == wire


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (ServerSentEvent(retry=3000), b"retry: 3000\n\n"),
        (ServerSentEvent(id="42"), b"id: 42\n\n"),
        (ServerSentEvent(id=""), b"id\n\n"),
        (ServerSentEvent(comment="heartbeat"), b": heartbeat\n\n"),
        (ServerSentEvent(id="9", retry=10, comment=""), b":\nid: 9\nretry: 10\n\n"),
        (ServerSentEvent(), b"\n"),
    ],
)
def test_without_data_nothing_is_dispatched(event: ServerSentEvent, wire: bytes) -> None:
    assert encode(event) == wire
    events, _ = parse(encode(event))
    assert events == []


def test_id_only_control_event_sets_the_last_event_id() -> None:
    """The hub's handshake: a cursor with no event, taken at the blank line."""
    events, parser = parse(encode(ServerSentEvent(id="42")) + encode(ServerSentEvent(data="x")))
    assert events == [Event(data="x", id="42")]
    assert parser.last_event_id == "42"


def test_empty_id_resets_the_last_event_id() -> None:
    stream = encode(ServerSentEvent(data="a", id="1")) + encode(ServerSentEvent(data="b", id=""))
    events, parser = parse(stream)
    assert [e.id for e in events] == ["1", ""]
    assert parser.last_event_id == ""


def test_retry_reaches_the_parser() -> None:
    _, parser = parse(encode(ServerSentEvent(retry=2500)))
    assert parser.retry == 2500


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("", b":\n"),
        ("ping", b": ping\n"),
        ("a\nb\r\nc\rd", b": a\n: b\n: c\n: d\n"),
        ("a\n", b": a\n:\n"),
    ],
)
def test_encode_comment(text: str, wire: bytes) -> None:
    assert encode_comment(text) == wire
    assert parse(wire + b"data: x\n\n")[0] == [Event(data="x")]


def test_encode_comment_defaults_to_a_bare_colon() -> None:
    assert encode_comment() == b":\n"


# -- refusals ------------------------------------------------------------------------------


class Millis(IntEnum):
    SECOND = 1000


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (ServerSentEvent(data="x", event="a\nb"), "event must not contain CR or LF"),
        (ServerSentEvent(data="x", event="a\rb"), "event must not contain CR or LF"),
        (ServerSentEvent(data="x", event="a\r\nb"), "event must not contain CR or LF"),
        (ServerSentEvent(data="x", event="a\n"), "event must not contain CR or LF"),
        (ServerSentEvent(data="x", id="1\n"), "id must not contain CR or LF"),
        (ServerSentEvent(data="x", id="1\r2"), "id must not contain CR or LF"),
        (ServerSentEvent(data="x", id="1\x002"), "id must not contain NUL"),
        (ServerSentEvent(id="\x00"), "id must not contain NUL"),
        (ServerSentEvent(data="x", retry=-1), "retry must be a non-negative int"),
        (ServerSentEvent(data="x", retry=1.5), "retry must be a non-negative int"),  # type: ignore[arg-type]
        (ServerSentEvent(data="x", retry=True), "retry must be a non-negative int"),
        (ServerSentEvent(data="x", retry=False), "retry must be a non-negative int"),
        (ServerSentEvent(data="x", retry="5"), "retry must be a non-negative int"),  # type: ignore[arg-type]
        (ServerSentEvent(data="x", retry=Millis.SECOND), "retry must be a non-negative int"),
        (ServerSentEvent(retry=2**64), "retry must be a non-negative int"),
        (ServerSentEvent(data=5), "data must be a str"),  # type: ignore[arg-type]
        (ServerSentEvent(data=b"x"), "data must be a str"),  # type: ignore[arg-type]
        (ServerSentEvent(data="x", event=1), "event must be a str"),  # type: ignore[arg-type]
        (ServerSentEvent(data="x", id=1), "id must be a str"),  # type: ignore[arg-type]
        (ServerSentEvent(data="x", comment=1), "comment must be a str"),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_what_it_cannot_send_unchanged(event: ServerSentEvent, message: str) -> None:
    with pytest.raises(EncodeError, match=message) as caught:
        encode(event)
    assert isinstance(caught.value, LocalProtocolError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "event",
    [
        ServerSentEvent(data="\ud800"),
        ServerSentEvent(data="x", event="\udfff"),
        ServerSentEvent(data="x", id="a\udc80"),
        ServerSentEvent(comment="\ud83d"),
    ],
)
def test_lone_surrogates_are_refused(event: ServerSentEvent) -> None:
    with pytest.raises(EncodeError, match="not encodable as UTF-8") as caught:
        encode(event)
    assert isinstance(caught.value.__cause__, UnicodeEncodeError)


def test_encode_comment_refuses_non_text() -> None:
    with pytest.raises(EncodeError, match="comment must be a str"):
        encode_comment(b"x")  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="not encodable"):
        encode_comment("\ud800")


# -- round trips ---------------------------------------------------------------------------

any_text = st.text()
line_text = st.text().filter(lambda s: "\r" not in s and "\n" not in s)
id_text = line_text.filter(lambda s: "\x00" not in s)
events = st.builds(
    ServerSentEvent,
    data=any_text,
    event=st.none() | line_text,
    id=st.none() | id_text,
    retry=st.none() | st.integers(0, 2**64 - 1),
    comment=st.none() | any_text,
)
forged = st.sampled_from(
    [
        "\n\nevent: x\ndata: forged",
        "\r",
        "\r\n\r\n",
        "\n\n",
        "\ndata: forged\n\n",
        "\r\rid: 666\r\r",
        ":\n\n",
        "\ufeff",
    ]
)


def expected(event: ServerSentEvent, previous_id: str = "") -> tuple[str, str, str]:
    assert event.data is not None
    data = event.data.replace("\r\n", "\n").replace("\r", "\n")
    return (event.event or "message", data, previous_id if event.id is None else event.id)


@settings(max_examples=500, deadline=None)
@given(events)
def test_parse_of_encode_gives_the_event_back(event: ServerSentEvent) -> None:
    parsed, parser = parse(encode(event))
    assert [(e.event, e.data, e.id) for e in parsed] == [expected(event)]
    if event.retry is not None:
        assert parser.retry == event.retry


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(any_text, forged)), st.lists(st.one_of(line_text, forged)))
def test_data_and_comments_can_never_forge_a_second_event(
    data_parts: list[str], comment_parts: list[str]
) -> None:
    event = ServerSentEvent(data="".join(data_parts), comment="".join(comment_parts) or None)
    parsed, parser = parse(encode(event))
    assert [(e.event, e.data, e.id) for e in parsed] == [expected(event)]
    assert (parser.last_event_id, parser.retry) == ("", None)


@settings(max_examples=200, deadline=None)
@given(st.lists(events | st.builds(ServerSentEvent, id=st.none() | id_text)), st.data())
def test_a_stream_of_encoded_events_parses_back_one_for_one(
    sent: list[ServerSentEvent], draw: st.DataObject
) -> None:
    """Concatenated, and cut into arbitrary chunks, events don't bleed into each other."""
    stream = b"".join(encode(e) for e in sent)
    points = sorted(draw.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    parser = EventStreamParser(max_event_size=None)
    parsed: list[Event] = []
    for a, b in itertools.pairwise([0, *points, len(stream)]):
        parsed.extend(parser.feed(stream[a:b]))
    wanted = []
    last_id = ""
    for event in sent:
        if event.data is not None:
            wanted.append(expected(event, last_id))
        if event.id is not None:
            last_id = event.id
    assert [(e.event, e.data, e.id) for e in parsed] == wanted
    assert parser.last_event_id == last_id
