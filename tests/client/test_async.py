"""``AsyncEventSource`` against the fault-injecting server: the same behaviour as the sync twin."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ssehub.client import AsyncEventSource, ConnectionState, ReconnectPolicy
from ssehub.errors import (
    BadStatusError,
    ClientError,
    ConnectError,
    ContentTypeError,
    ReadTimeoutError,
    ReconnectExhaustedError,
)
from ssehub.protocol import Event
from tests.support.client import NUMBERED, UpperRandom, resuming
from tests.support.fault_server import STALL, Action, FaultServer, Received, event, head


@dataclass
class AsyncRecorder:
    sleeps: list[float] = field(default_factory=list)
    errors: list[ClientError] = field(default_factory=list)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)

    def options(self) -> dict[str, Any]:
        return {"sleep": self.sleep, "rng": UpperRandom(), "on_error": self.errors.append}


async def take(source: AsyncEventSource, count: int) -> list[Event]:
    events: list[Event] = []
    async for item in source:
        events.append(item)
        if len(events) == count:
            break
    return events


async def test_event_cut_in_half_is_dropped_and_resume_loses_nothing() -> None:
    half_of_second = len(NUMBERED[0]) + len(NUMBERED[1]) // 2
    recorder = AsyncRecorder()
    with FaultServer(resuming([half_of_second, 3])) as server:
        async with AsyncEventSource(server.url, **recorder.options()) as source:
            events = await take(source, 5)
    assert [(e.id, e.data) for e in events] == [(str(n), f"event {n}") for n in range(1, 6)]
    assert [r.headers.get("last-event-id") for r in server.requests] == [None, "1", "1"]
    assert recorder.sleeps == [3.0, 6.0]  # the second stream gave no event: a failure


async def test_stalled_connection_hits_the_read_timeout_and_reconnects() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(), NUMBERED[0], STALL] if n == 0 else [head(), NUMBERED[1]]

    recorder = AsyncRecorder()
    with FaultServer(script) as server:
        async with AsyncEventSource(server.url, read_timeout=0.3, **recorder.options()) as source:
            events = await take(source, 2)
    assert [e.id for e in events] == ["1", "2"]
    assert [type(e) for e in recorder.errors] == [ReadTimeoutError]
    assert server.requests[1].headers["last-event-id"] == "1"


async def test_server_restart_is_survived() -> None:
    with FaultServer(resuming([len(NUMBERED[0])])) as server:
        sleeps: list[float] = []

        async def sleep(delay: float) -> None:
            sleeps.append(delay)
            if len(sleeps) == 1:
                server.pause()
            elif len(sleeps) == 3:
                server.resume()

        async with AsyncEventSource(server.url, sleep=sleep, rng=UpperRandom()) as source:
            events = await take(source, 2)
    assert [e.id for e in events] == ["1", "2"]
    assert sleeps == [3.0, 6.0, 12.0]


async def test_retry_field_and_500_then_200() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        if n == 0:
            return [head(), b"retry: 250\n", NUMBERED[0]]
        if n == 1:
            return [head(500, "text/html")]
        return [head(), NUMBERED[1]]

    recorder = AsyncRecorder()
    with FaultServer(script) as server:
        async with AsyncEventSource(server.url, **recorder.options()) as source:
            await take(source, 2)
    assert recorder.sleeps == [0.25, 0.5]
    assert [type(e) for e in recorder.errors] == [BadStatusError]


async def test_wrong_content_type_raises_without_retrying() -> None:
    with FaultServer(lambda n, r: [head(200, "application/json"), b"{}"]) as server:
        async with AsyncEventSource(server.url) as source:
            with pytest.raises(ContentTypeError):
                await take(source, 1)
            assert source.state is ConnectionState.CLOSED
    assert len(server.requests) == 1


async def test_204_stops_for_good() -> None:
    with FaultServer(lambda n, r: [head(204, None)]) as server:
        async with AsyncEventSource(server.url) as source:
            assert [e async for e in source] == []
    assert len(server.requests) == 1


async def test_max_attempts_exhausted() -> None:
    recorder = AsyncRecorder()
    with FaultServer(lambda n, r: []) as server:
        url = server.url
    policy = ReconnectPolicy(max_attempts=2)
    options = recorder.options()
    async with AsyncEventSource(url, policy=policy, retry_connect=True, **options) as source:
        with pytest.raises(ReconnectExhaustedError) as info:
            await take(source, 1)
    assert isinstance(info.value.__cause__, ConnectError)
    assert len(recorder.sleeps) == 2


async def test_post_json_with_headers() -> None:
    with FaultServer(lambda n, r: [head(), event("answer")]) as server:
        async with AsyncEventSource(
            server.url,
            method="POST",
            json={"prompt": "hi"},
            headers={"Authorization": "Bearer t"},
        ) as source:
            assert [e.data async for e in source] == ["answer"]
    (sent,) = server.requests
    assert sent.method == "POST"
    assert json.loads(sent.body) == {"prompt": "hi"}
    assert sent.headers["authorization"] == "Bearer t"


async def test_aclose_from_another_task_ends_a_blocked_iteration() -> None:
    with FaultServer(lambda n, r: [head(), NUMBERED[0], STALL]) as server:
        source = AsyncEventSource(server.url, read_timeout=None)
        first = asyncio.Event()

        async def consume() -> list[Event]:
            events = []
            async for item in source:
                events.append(item)
                first.set()
            return events

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 20)
        await source.aclose()
        events = await asyncio.wait_for(task, 20)
    assert [e.id for e in events] == ["1"]
    assert source.state is ConnectionState.CLOSED


async def test_aclose_during_the_reconnect_wait_ends_iteration() -> None:
    with FaultServer(lambda n, r: [head(), NUMBERED[0]]) as server:
        reconnecting = asyncio.Event()
        source = AsyncEventSource(
            server.url,
            policy=ReconnectPolicy(default_delay=3600),
            on_reconnect=lambda info: reconnecting.set(),
        )

        async def consume() -> list[Event]:
            return [item async for item in source]

        task = asyncio.create_task(consume())
        await asyncio.wait_for(reconnecting.wait(), 20)
        await source.aclose()
        events = await asyncio.wait_for(task, 20)
    assert [e.id for e in events] == ["1"]
    assert len(server.requests) == 1


async def test_leaving_async_with_closes_the_connection() -> None:
    with FaultServer(lambda n, r: [head(), NUMBERED[0], STALL]) as server:
        async with AsyncEventSource(server.url, read_timeout=None) as source:
            assert (await source.__anext__()).id == "1"
        assert source.state is ConnectionState.CLOSED
        for _ in range(2000):
            if server.client_disconnects == 1:
                break
            await asyncio.sleep(0.01)
        assert server.client_disconnects == 1
