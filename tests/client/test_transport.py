"""The transport seam: a replaying fake beside the httpx one, and the httpx edge cases."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import httpx
import pytest

import ssehub.client
from ssehub.client import EventSource, Request, StreamResponse
from ssehub.errors import EventTooLargeError
from ssehub.protocol import Event
from tests.support.client import Recorder, take
from tests.support.fault_server import Action, FaultServer, Received, event, head


class ReplayResponse:
    def __init__(self, chunks: Sequence[bytes], status_code: int = 200) -> None:
        self.status_code = status_code
        self.headers: Mapping[str, str] = {"content-type": "text/event-stream"}
        self.chunks = chunks
        self.closed = False

    def iter_bytes(self) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed = True


class ReplayTransport:
    """Replays one canned list of chunks per connection; remembers the requests."""

    def __init__(self, *streams: Sequence[bytes]) -> None:
        self.streams = list(streams)
        self.requests: list[Request] = []
        self.responses: list[ReplayResponse] = []

    def open(self, request: Request) -> StreamResponse:
        self.requests.append(request)
        response = ReplayResponse(self.streams.pop(0))
        self.responses.append(response)
        return response

    def close(self) -> None:
        pass


def test_any_transport_can_carry_the_stream_split_anywhere() -> None:
    wire = "id: 1\r\ndata: 你好\r\n\r\nid: 2\rdata: two\r\r".encode()
    one_byte_chunks = [wire[i : i + 1] for i in range(len(wire))]
    transport = ReplayTransport(one_byte_chunks, [b"data: three\n\n"])
    recorder = Recorder()
    with EventSource("http://example.invalid/s", transport=transport, **recorder.options()) as s:
        events = take(s, 3)
    assert events == [
        Event(data="你好", id="1"),
        Event(data="two", id="2"),
        Event(data="three", id="2"),
    ]
    assert transport.requests[1].headers["Last-Event-ID"] == "2"
    assert all(response.closed for response in transport.responses)


def test_event_over_max_event_size_raises_and_closes() -> None:
    transport = ReplayTransport([b"data: " + b"x" * 100 + b"\n\n"])
    with (
        EventSource("http://example.invalid/s", transport=transport, max_event_size=50) as source,
        pytest.raises(EventTooLargeError),
    ):
        take(source, 1)
    assert source.state is ssehub.client.ConnectionState.CLOSED
    assert transport.responses[0].closed


def test_a_cut_in_a_chunked_body_is_the_end_of_the_stream() -> None:
    chunked = head(extra=[("Transfer-Encoding", "chunked")])
    first = event("one", id="1")

    def script(n: int, request: Received) -> Sequence[Action]:
        if n == 0:
            return [chunked, b"%x\r\n%s\r\n" % (len(first), first), b"20\r\nid: 2\ndata: tw"]
        return [head(), event("two", id="2")]

    recorder = Recorder()
    with FaultServer(script) as server, EventSource(server.url, **recorder.options()) as source:
        assert [e.data for e in take(source, 2)] == ["one", "two"]
    assert recorder.errors == []


def test_redirects_are_followed() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        if request.path == "/old":
            return [head(307, None, [("Location", "/new"), ("Content-Length", "0")])]
        return [head(), event(request.path)]

    with FaultServer(script) as server, EventSource(server.url + "/old") as source:
        assert next(source).data == "/new"


def test_a_given_httpx_client_is_used_and_left_open() -> None:
    with (
        FaultServer(lambda n, r: [head(), event("x")]) as server,
        httpx.Client(headers={"X-From-Client": "yes"}) as client,
    ):
        with EventSource(server.url, client=client) as source:
            next(source)
        assert not client.is_closed
        assert server.requests[0].headers["x-from-client"] == "yes"


def test_public_names_are_curated() -> None:
    assert sorted(ssehub.client.__all__) == sorted(
        [
            "CROSS_ORIGIN_HEADERS",
            "DEFAULT_RETRY_STATUSES",
            "MAX_REDIRECTS",
            "MIN_RECONNECT_DELAY",
            "RETRY_STATUSES",
            "AsyncEventSource",
            "AsyncHTTPXTransport",
            "AsyncPublisher",
            "AsyncStreamResponse",
            "AsyncTransport",
            "ConnectionState",
            "EventSource",
            "HTTPXTransport",
            "Opened",
            "Publisher",
            "ReconnectPolicy",
            "Reconnecting",
            "Request",
            "StreamResponse",
            "Transport",
        ]
    )
    assert all(hasattr(ssehub.client, name) for name in ssehub.client.__all__)
