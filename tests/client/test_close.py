"""Closing an ``EventSource``: from the loop, from another thread, during the reconnect wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ssehub.client import ConnectionState, EventSource, ReconnectPolicy
from ssehub.protocol import Event
from tests.support.client import NUMBERED
from tests.support.fault_server import STALL, FaultServer, head

DEADLINE = 20.0  # seconds; a bound for a failing test, never a measurement


def poll(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def consume_in_thread(source: EventSource) -> tuple[threading.Thread, list[Event]]:
    events: list[Event] = []
    thread = threading.Thread(target=lambda: events.extend(source), daemon=True)
    thread.start()
    return thread, events


def test_leaving_the_with_block_closes_the_connection() -> None:
    with FaultServer(lambda n, r: [head(), NUMBERED[0], STALL]) as server:
        with EventSource(server.url, read_timeout=None) as source:
            assert next(source).id == "1"
        assert source.state is ConnectionState.CLOSED
        poll(lambda: server.client_disconnects == 1, "the server to see the client leave")


def test_close_from_another_thread_ends_a_blocked_read() -> None:
    with FaultServer(lambda n, r: [head(), NUMBERED[0], STALL]) as server:
        source = EventSource(server.url, read_timeout=None)
        thread, events = consume_in_thread(source)
        poll(lambda: len(events) == 1, "the first event")
        source.close()
        thread.join(DEADLINE)
        assert not thread.is_alive()
        poll(lambda: server.client_disconnects == 1, "the server to see the client leave")
    assert [e.id for e in events] == ["1"]
    assert len(server.requests) == 1


def test_close_during_the_reconnect_wait_ends_the_iteration() -> None:
    waiting = threading.Event()
    with FaultServer(lambda n, r: [head(), NUMBERED[0]]) as server:
        source = EventSource(
            server.url,
            policy=ReconnectPolicy(default_delay=3600),
            on_reconnect=lambda info: waiting.set(),
        )
        thread, events = consume_in_thread(source)
        assert waiting.wait(DEADLINE)
        source.close()
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert [e.id for e in events] == ["1"]
    assert len(server.requests) == 1


def test_iterating_a_closed_source_yields_nothing() -> None:
    with FaultServer(lambda n, r: [head(), NUMBERED[0]]) as server:
        source = EventSource(server.url)
        source.close()
        assert list(source) == []
    assert server.requests == []
