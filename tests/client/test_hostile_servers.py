"""The client against servers that misbehave: retry floods, dead hubs, redirect tricks.

Each server is a real one on a loopback port (:class:`FaultServer`); time is
injected (``sleep`` records the delay and advances a fake clock), so nothing
waits on the wall clock.  Issue 9, findings 14, 15 and 17.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from ssehub.client import (
    MAX_REDIRECTS,
    MIN_RECONNECT_DELAY,
    AsyncEventSource,
    EventSource,
    ReconnectPolicy,
)
from ssehub.errors import ConnectError, ReconnectExhaustedError, RedirectError
from tests.support.client import Recorder, take
from tests.support.fault_server import Action, FaultServer, Received, event, head

CREDENTIALS = {"X-API-Key": "k-123", "Authorization": "Bearer t-456", "Cookie": "session=789"}


class FakeTime:
    """A clock that only the injected sleep moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


def test_retry_zero_is_floored() -> None:
    """``retry: 0`` and a stream that ends at once: a reconnect every 0.25 s at most."""

    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(), b"retry: 0\n", event(str(n), id=str(n))]

    time = FakeTime()
    with (
        FaultServer(script) as server,
        EventSource(server.url, sleep=time.sleep, clock=time.clock) as source,
    ):
        events = take(source, 40)
    assert len(events) == 40
    assert min(time.sleeps) >= MIN_RECONNECT_DELAY
    # 40 connections took at least 39 floored waits of simulated time: no flood
    assert time.now >= 39 * MIN_RECONNECT_DELAY


def test_a_zero_default_delay_is_floored_too() -> None:
    time = FakeTime()
    with FaultServer(lambda n, r: [head(), event(str(n), id=str(n))]) as server:
        policy = ReconnectPolicy(default_delay=0, jitter="none")
        with EventSource(server.url, policy=policy, sleep=time.sleep, clock=time.clock) as source:
            take(source, 5)
    assert time.sleeps
    assert min(time.sleeps) >= MIN_RECONNECT_DELAY


def test_first_connection_to_a_dead_server_fails_at_once() -> None:
    with FaultServer(lambda n, r: []) as server:
        url = server.url  # nothing listens there any more
    recorder = Recorder()
    with EventSource(url, **recorder.options()) as source, pytest.raises(ConnectError):
        take(source, 1)
    assert recorder.sleeps == []
    assert [type(e) for e in recorder.errors] == [ConnectError]


async def test_async_first_connection_to_a_dead_server_fails_at_once() -> None:
    with FaultServer(lambda n, r: []) as server:
        url = server.url
    async with AsyncEventSource(url) as source:
        with pytest.raises(ConnectError):
            await source.__anext__()


def test_retry_connect_keeps_trying_and_every_retry_is_logged_and_hooked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FaultServer(lambda n, r: []) as server:
        url = server.url
    recorder = Recorder()
    policy = ReconnectPolicy(max_attempts=3)
    caplog.set_level(logging.INFO, logger="ssehub.client")
    source = EventSource(url, retry_connect=True, policy=policy, **recorder.options())
    with source, pytest.raises(ReconnectExhaustedError):
        take(source, 1)
    assert len(recorder.sleeps) == len(recorder.reconnects) == 3
    assert [r.attempt for r in recorder.reconnects] == [1, 2, 3]
    assert all(isinstance(r.error, ConnectError) for r in recorder.reconnects)
    warnings = [r for r in caplog.records if r.name == "ssehub.client"]
    assert len(warnings) == 3
    assert all(r.levelno == logging.WARNING and "reconnecting to" in r.message for r in warnings)


def _redirect(location: str) -> list[Action]:
    return [head(307, None, extra=[("Location", location), ("Content-Length", "0")])]


def test_cross_origin_redirect_drops_credential_headers() -> None:
    with FaultServer(lambda n, r: [head(), event("landed")]) as other:
        with FaultServer(lambda n, r: _redirect(f"{other.url}/stream")) as first:
            source = EventSource(first.url, headers=CREDENTIALS, reconnect=False)
            with source:
                assert [e.data for e in source] == ["landed"]
        sent = first.requests[0].headers
        arrived = other.requests[0].headers
    assert {k.lower() for k in CREDENTIALS} <= set(sent)
    assert not {k.lower() for k in CREDENTIALS} & set(arrived)
    assert arrived["accept"] == sent["accept"]


def test_same_origin_redirect_keeps_custom_headers() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        return _redirect("/moved") if request.path != "/moved" else [head(), event("here")]

    headers = {"X-API-Key": "k-123"}
    with (
        FaultServer(script) as server,
        EventSource(server.url, headers=headers, reconnect=False) as source,
    ):
        assert [e.data for e in source] == ["here"]
    assert server.requests[1].headers["x-api-key"] == "k-123"


def test_redirect_loop_is_a_final_error() -> None:
    with FaultServer(lambda n, r: []) as b, FaultServer(lambda n, r: _redirect(b.url)) as a:
        b.script = lambda n, r: _redirect(a.url)
        recorder = Recorder()
        source = EventSource(a.url, **recorder.options())
        with source, pytest.raises(RedirectError, match="redirect loop"):
            take(source, 1)
        assert recorder.sleeps == []
        assert (len(a.requests), len(b.requests)) == (1, 1)


def test_too_many_redirects_is_a_final_error() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        return _redirect(f"/hop/{n + 1}")

    recorder = Recorder()
    with FaultServer(script) as server:
        source = EventSource(server.url, **recorder.options())
        with source, pytest.raises(RedirectError, match="more than"):
            take(source, 1)
        assert len(server.requests) == MAX_REDIRECTS + 1
    assert recorder.sleeps == []
