"""What ``EventSource`` does with each kind of response: retry, stop, or raise a typed error."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ssehub.client import ConnectionState, EventSource, ReconnectPolicy
from ssehub.errors import BadStatusError, ConnectError, ContentTypeError, ReconnectExhaustedError
from tests.support.client import Recorder, take
from tests.support.fault_server import Action, FaultServer, Received, event, head


def test_500_then_200_retries_and_delivers() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(500, "text/html"), b"<h1>oops</h1>"] if n == 0 else [head(), event("hi")]

    recorder = Recorder()
    with (
        FaultServer(script) as server,
        EventSource(server.url, **recorder.options()) as source,
    ):
        events = take(source, 1)
    assert [e.data for e in events] == ["hi"]
    assert [(type(e), getattr(e, "status_code", None)) for e in recorder.errors] == [
        (BadStatusError, 500)
    ]
    assert recorder.sleeps == [3.0]


def test_retry_after_on_503_lengthens_the_delay() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        if n == 0:
            return [head(503, "text/plain", [("Retry-After", "7")])]
        return [head(), event("back")]

    recorder = Recorder()
    with (
        FaultServer(script) as server,
        EventSource(server.url, **recorder.options()) as source,
    ):
        take(source, 1)
    assert recorder.sleeps == [7.0]


def test_429_is_retried() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(429, "text/plain")] if n == 0 else [head(), event("ok")]

    recorder = Recorder()
    with (
        FaultServer(script) as server,
        EventSource(server.url, **recorder.options()) as source,
    ):
        assert [e.data for e in take(source, 1)] == ["ok"]
    assert len(server.requests) == 2


def test_wrong_content_type_raises_content_type_error_without_retrying() -> None:
    recorder = Recorder()
    with (
        FaultServer(lambda n, r: [head(200, "text/html; charset=utf-8"), b"<p>hi</p>"]) as server,
        EventSource(server.url, **recorder.options()) as source,
    ):
        with pytest.raises(ContentTypeError) as info:
            take(source, 1)
        assert source.state is ConnectionState.CLOSED
    assert info.value.content_type == "text/html; charset=utf-8"
    assert len(server.requests) == 1
    assert recorder.sleeps == []
    assert recorder.errors == [info.value]


def test_content_type_parameters_and_case_are_accepted() -> None:
    script = lambda n, r: [head(200, "Text/Event-Stream; charset=utf-8"), event("x")]  # noqa: E731
    with FaultServer(script) as server, EventSource(server.url) as source:
        assert [e.data for e in take(source, 1)] == ["x"]


def test_204_stops_for_good() -> None:
    recorder = Recorder()
    with (
        FaultServer(lambda n, r: [head(204, None)]) as server,
        EventSource(server.url, **recorder.options()) as source,
    ):
        assert list(source) == []
        assert source.state is ConnectionState.CLOSED
    assert len(server.requests) == 1
    assert recorder.sleeps == []


def test_204_after_a_stream_stops_the_reconnecting() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(), event("last", id="9")] if n == 0 else [head(204, None)]

    recorder = Recorder()
    with (
        FaultServer(script) as server,
        EventSource(server.url, **recorder.options()) as source,
    ):
        assert [e.data for e in source] == ["last"]
    assert len(server.requests) == 2
    assert recorder.sleeps == [3.0]


def test_non_retryable_4xx_raises_bad_status_error() -> None:
    recorder = Recorder()
    with (
        FaultServer(lambda n, r: [head(404, "application/json"), b"{}"]) as server,
        EventSource(server.url, **recorder.options()) as source,
        pytest.raises(BadStatusError) as info,
    ):
        take(source, 1)
    assert info.value.status_code == 404
    assert len(server.requests) == 1
    assert recorder.sleeps == []


def test_retry_statuses_are_configurable() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(404, "text/plain")] if n == 0 else [head(500, "text/plain")]

    recorder = Recorder()
    with (
        FaultServer(script) as server,
        EventSource(server.url, retry_statuses={404}, **recorder.options()) as source,
        pytest.raises(BadStatusError) as info,
    ):
        take(source, 1)
    assert info.value.status_code == 500
    assert len(server.requests) == 2


def test_max_attempts_exhausted_raises_reconnect_exhausted_error() -> None:
    recorder = Recorder()
    policy = ReconnectPolicy(max_attempts=3)
    with (
        FaultServer(lambda n, r: [head(500, "text/plain")]) as server,
        EventSource(server.url, policy=policy, **recorder.options()) as source,
    ):
        with pytest.raises(ReconnectExhaustedError) as info:
            take(source, 1)
        assert source.state is ConnectionState.CLOSED
    assert isinstance(info.value.__cause__, BadStatusError)
    assert len(server.requests) == 4
    assert len(recorder.sleeps) == 3


def test_max_elapsed_counts_injected_time() -> None:
    now = [0.0]

    def sleep(delay: float) -> None:
        now[0] += delay

    policy = ReconnectPolicy(default_delay=1.0, jitter="none", max_elapsed=10.0)
    with (
        FaultServer(lambda n, r: [head(502, "text/plain")]) as server,
        EventSource(server.url, policy=policy, sleep=sleep, clock=lambda: now[0]) as source,
        pytest.raises(ReconnectExhaustedError),
    ):
        take(source, 1)
    # failures at 0, 1, 3, 7 and 15 s: the first one 10 s or more after the first failure gives up
    assert now[0] == 15.0
    assert len(server.requests) == 5


def test_unreachable_server_gives_up_after_max_attempts() -> None:
    with FaultServer(lambda n, r: []) as server:
        url = server.url
    recorder = Recorder()
    source = EventSource(
        url, retry_connect=True, policy=ReconnectPolicy(max_attempts=2), **recorder.options()
    )
    with source, pytest.raises(ReconnectExhaustedError) as info:
        take(source, 1)
    assert isinstance(info.value.__cause__, ConnectError)
    assert [type(e) for e in recorder.errors] == [ConnectError] * 3


def test_without_reconnect_errors_raise_at_once_and_the_end_ends_iteration() -> None:
    with FaultServer(lambda n, r: [head(), event("only")]) as server:
        with EventSource(server.url, reconnect=False) as source:
            assert [e.data for e in source] == ["only"]
        assert len(server.requests) == 1
        server.pause()
        with EventSource(server.url, reconnect=False) as source, pytest.raises(ConnectError):
            take(source, 1)
