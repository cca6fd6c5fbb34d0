"""A plug-in's response under the hub's write deadline: fake clock, fake ASGI server, no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from starlette.responses import Response, StreamingResponse

from ssehub.hub import Hub, HubConfig
from ssehub.server import GuardedResponse
from tests.support.clock import FakeClock
from tests.support.hubs import open_hub
from tests.support.stuck import StuckClient

DEADLINE = 30.0


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with open_hub(config=HubConfig(write_timeout=DEADLINE), clock=FakeClock(100.0)) as hub:
        yield hub


def endless(closed: list[bool]) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * 1024
        finally:
            closed.append(True)

    return chunks


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def run_stuck(
    hub: Hub, client: StuckClient, *, abort: bool
) -> tuple[asyncio.Task[None], list[bool]]:
    closed: list[bool] = []
    response = GuardedResponse(hub, StreamingResponse(endless(closed)()))
    task = asyncio.create_task(response(client.scope(abort=abort), client.receive, client.send))
    await settle()
    assert client.blocked
    return task, closed


async def test_a_send_blocked_past_the_deadline_resets_the_connection_and_ends_quietly(
    hub: Hub,
) -> None:
    clock = hub.clock
    assert isinstance(clock, FakeClock)
    client = StuckClient()
    task, closed = await run_stuck(hub, client, abort=True)
    hub.tick(clock.now + DEADLINE - 1)
    assert client.aborts == 0
    assert client.blocked
    hub.tick(clock.now + DEADLINE + 1)
    await asyncio.wait_for(task, 5)  # no exception: abandoned on purpose
    assert client.aborts == 1
    assert closed == [True]  # the generator is not pulled again, and is closed
    assert hub.stats.write_timeouts == 1
    hub.tick(clock.now + 2 * DEADLINE)
    assert hub.stats.write_timeouts == 1


async def test_without_the_abort_extension_the_response_is_cancelled_and_ends_quietly(
    hub: Hub,
) -> None:
    clock = hub.clock
    assert isinstance(clock, FakeClock)
    client = StuckClient()
    task, closed = await run_stuck(hub, client, abort=False)
    hub.tick(clock.now + DEADLINE + 1)
    await asyncio.wait_for(task, 5)
    assert not task.cancelled()
    assert closed == [True]
    assert hub.stats.write_timeouts == 1


async def test_a_cancel_that_is_not_the_guards_propagates(hub: Hub) -> None:
    client = StuckClient()
    task, _ = await run_stuck(hub, client, abort=False)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert hub.stats.write_timeouts == 0


async def test_a_plain_answer_taken_at_once_is_not_timed_out_later(hub: Hub) -> None:
    clock = hub.clock
    assert isinstance(clock, FakeClock)
    client = StuckClient(accept=1)
    response = GuardedResponse(hub, Response(b"answer", headers={"X-Kept": "1"}))
    response.headers["X-Added"] = "2"
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)
        await client.send(message)

    await response(client.scope(abort=True), client.receive, send)
    hub.tick(clock.now + DEADLINE + 1)
    assert client.bodies == [b"answer"]
    assert hub.stats.write_timeouts == 0
    headers = dict(sent[0]["headers"])
    assert headers[b"x-kept"] == b"1"
    assert headers[b"x-added"] == b"2"


async def test_a_write_guard_is_ticked_only_while_its_block_runs(hub: Hub) -> None:
    clock = hub.clock
    assert isinstance(clock, FakeClock)
    aborts: list[int] = []
    with hub.write_guard() as guard:
        guard.attach(lambda: aborts.append(1))
        guard.pending_since = clock.now  # a write handed over and not taken
        escaped = guard
    escaped.pending_since = clock.now  # even if someone kept it: the hub no longer ticks it
    hub.tick(clock.now + DEADLINE + 1)
    assert aborts == []
    assert hub.stats.write_timeouts == 0
