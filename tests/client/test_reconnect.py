"""``EventSource`` against a fault-injecting server on a real port: drops, restarts, stalls.

Time is injected: the client's ``sleep`` records the delays it was asked to
wait (and returns at once), the jitter's ``rng`` is fixed, so every delay is asserted
exactly and no test waits on the wall clock (except a read timeout, which is
a bound, never a measurement).
"""

from __future__ import annotations

from collections.abc import Sequence

from ssehub.client import ConnectionState, EventSource, ReconnectPolicy
from ssehub.errors import ConnectError, ReadTimeoutError
from tests.support.client import NUMBERED, LowerRandom, Recorder, resuming, take
from tests.support.fault_server import ABORT, STALL, Action, FaultServer, Received, head


def test_event_cut_in_half_is_not_delivered_and_resume_loses_nothing() -> None:
    half_of_second = len(NUMBERED[0]) + len(NUMBERED[1]) // 2
    recorder = Recorder()
    with (
        FaultServer(resuming([half_of_second, len(NUMBERED[2]) + 3])) as server,
        EventSource(server.url, **recorder.options()) as source,
    ):
        events = take(source, 5)
    assert [(e.id, e.data) for e in events] == [(str(n), f"event {n}") for n in range(1, 6)]
    assert [r.headers.get("last-event-id") for r in server.requests] == [None, "1", "2"]
    assert [r.error for r in recorder.reconnects] == [None, None]


def test_connection_reset_mid_event_resumes_without_duplicates() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        if n == 0:
            return [head(), NUMBERED[0], NUMBERED[1][:5], ABORT]
        return resuming([None])(n, request)

    recorder = Recorder()
    with (
        FaultServer(script) as server,
        EventSource(server.url, **recorder.options()) as source,
    ):
        events = take(source, 5)
    assert [e.id for e in events] == ["1", "2", "3", "4", "5"]
    assert server.requests[1].headers["last-event-id"] == "1"


def test_server_restart_is_survived_with_growing_backoff() -> None:
    """The port closes for three attempts, then opens again; the client resumes."""
    with FaultServer(resuming([len(NUMBERED[0])])) as server:

        def on_sleep(count: int) -> None:
            if count == 1:
                server.pause()
            elif count == 4:
                server.resume()

        recorder = Recorder(on_sleep=on_sleep)
        with EventSource(server.url, **recorder.options()) as source:
            events = take(source, 2)
    assert [e.id for e in events] == ["1", "2"]
    assert recorder.sleeps == [3.0, 6.0, 12.0, 24.0]
    assert [type(e) for e in recorder.errors] == [ConnectError] * 3
    assert server.requests[1].headers["last-event-id"] == "1"


def test_stalled_connection_hits_the_read_timeout_and_reconnects() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(), NUMBERED[0], STALL] if n == 0 else [head(), NUMBERED[1]]

    recorder = Recorder()
    with (
        FaultServer(script) as server,
        EventSource(server.url, read_timeout=0.3, **recorder.options()) as source,
    ):
        events = take(source, 2)
    assert [e.id for e in events] == ["1", "2"]
    assert [type(e) for e in recorder.errors] == [ReadTimeoutError]
    assert server.requests[1].headers["last-event-id"] == "1"


def test_heartbeat_comments_keep_a_quiet_stream_alive() -> None:
    """Comments are bytes: a stream that only sends heartbeats never times out."""
    beats = [b": ping\n\n"] * 3

    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(), *beats, NUMBERED[0], *beats, NUMBERED[1]]

    recorder = Recorder()
    with (
        FaultServer(script) as server,
        EventSource(server.url, read_timeout=5, **recorder.options()) as source,
    ):
        events = take(source, 2)
    assert [e.id for e in events] == ["1", "2"]
    assert recorder.errors == []


def test_retry_field_from_the_server_sets_the_delay() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        if n == 0:
            return [head(), b"retry: 1234\n\n", NUMBERED[0]]
        return [head(), NUMBERED[1]]

    recorder = Recorder()
    with (
        FaultServer(script) as server,
        EventSource(server.url, **recorder.options()) as source,
    ):
        take(source, 2)
        assert source.retry == 1234
    assert recorder.sleeps == [1.234]


def test_backoff_grows_with_jitter_and_resets_after_a_healthy_stream() -> None:
    statuses = [500, 500, 500, 200, 502, 200]

    def script(n: int, request: Received) -> Sequence[Action]:
        if statuses[n] != 200:
            return [head(statuses[n], "text/plain"), b"down"]
        return [head(), NUMBERED[n // 4]]

    recorder = Recorder()
    options = {**recorder.options(), "rng": LowerRandom()}
    policy = ReconnectPolicy(default_delay=1.0, max_delay=100.0, jitter="equal")
    with (
        FaultServer(script) as server,
        EventSource(server.url, policy=policy, **options) as source,
    ):
        take(source, 2)
    # first retry: exactly the reconnection time; then 2x, 4x with the growth jittered down
    # by up to half (the lowest draw here), never below the reconnection time
    assert recorder.sleeps == [1.0, 1.5, 2.5, 1.0, 1.5]


def test_backoff_is_capped_by_max_delay() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(), NUMBERED[0]] if n == 5 else [head(503, "text/plain")]

    recorder = Recorder()
    policy = ReconnectPolicy(default_delay=1.0, max_delay=5.0)
    with (
        FaultServer(script) as server,
        EventSource(server.url, policy=policy, **recorder.options()) as source,
    ):
        take(source, 1)
    assert recorder.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_hooks_and_state_follow_the_connection() -> None:
    seen: list[tuple[str, ConnectionState]] = []

    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(), NUMBERED[n]] if n != 1 else [head(500, "text/plain")]

    source: EventSource
    with FaultServer(script) as server:
        source = EventSource(
            server.url,
            sleep=lambda delay: seen.append(("sleep", source.state)),
            on_open=lambda opened: seen.append(("open", source.state)),
            on_error=lambda error: seen.append(("error", source.state)),
            on_reconnect=lambda info: seen.append(("reconnect", source.state)),
        )
        assert source.state is ConnectionState.CONNECTING
        with source:
            take(source, 2)
    assert source.state is ConnectionState.CLOSED  # type: ignore[comparison-overlap]
    assert seen == [
        ("open", ConnectionState.OPEN),
        ("reconnect", ConnectionState.RECONNECTING),
        ("sleep", ConnectionState.RECONNECTING),
        ("error", ConnectionState.RECONNECTING),
        ("reconnect", ConnectionState.RECONNECTING),
        ("sleep", ConnectionState.RECONNECTING),
        ("open", ConnectionState.OPEN),
    ]
