"""The small per-stream objects of ``ssehub serve`` behave like what they replace (issue 12).

An idle stream's memory was cut by swapping uvicorn's ``asyncio.Event``s for a
slotted ``_LeanEvent`` and by letting a hub stream's request headers go once
its response started; these tests pin the behaviour those cuts must keep.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ssehub.hub import Hub, HubConfig
from ssehub.hub.backends.memory import MemoryBackend
from ssehub.server import HubStreamResponse
from ssehub.server._http import _LeanEvent
from ssehub.server._stream import DISCONNECT_EXTENSION

EVENTS = [asyncio.Event, _LeanEvent]


@pytest.mark.parametrize("make", EVENTS, ids=["asyncio.Event", "_LeanEvent"])
async def test_set_wakes_every_waiter_even_if_cleared_before_they_run(make: Any) -> None:
    event = make()
    waiters = [asyncio.ensure_future(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)  # let them start waiting (no timing: one loop turn)
    assert not any(w.done() for w in waiters)
    event.set()
    event.clear()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert not event.is_set()


@pytest.mark.parametrize("make", EVENTS, ids=["asyncio.Event", "_LeanEvent"])
async def test_a_set_event_returns_at_once_and_a_cancelled_waiter_leaves_no_trace(
    make: Any,
) -> None:
    event = make()
    waiter = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not event._waiters  # the cancelled waiter removed itself
    event.set()
    assert event.is_set()
    assert await event.wait() is True


def test_a_lean_event_holds_no_waiter_list_until_someone_waits() -> None:
    event = _LeanEvent()
    assert event._waiters is None
    assert not hasattr(event, "__dict__")
    assert _LeanEvent(True).is_set()


async def _serve_one_stream(extensions: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Serve a hub stream to an in-memory ASGI ``send`` until its opening write; end it."""
    hub = Hub(MemoryBackend(), HubConfig(heartbeat_interval=0))
    await hub.start()
    scope: dict[str, Any] = {
        "type": "http",
        "headers": [(b"host", b"127.0.0.1"), (b"cookie", b"session=" + b"c" * 500)],
        "extensions": extensions,
    }
    sent: list[Any] = []
    opened = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            opened.set()

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never leaves by itself
        return {"type": "http.disconnect"}

    stream = await hub.open(("t",), None)
    task = asyncio.ensure_future(HubStreamResponse(stream)(scope, receive, send))
    await asyncio.wait_for(opened.wait(), 10)
    headers_while_streaming = list(scope["headers"])
    stream.disconnected()
    await asyncio.wait_for(task, 10)
    await hub.aclose()
    return {"headers": headers_while_streaming}, sent


async def test_a_stream_lets_its_request_headers_go_under_ssehubs_http_layer() -> None:
    callbacks: list[Any] = []
    seen, sent = await _serve_one_stream({DISCONNECT_EXTENSION: callbacks.append})
    assert seen["headers"] == []
    assert sent[0]["status"] == 200
    assert len(callbacks) == 1  # the disconnect hook was registered instead of a watcher


async def test_a_stream_keeps_its_request_headers_under_another_server() -> None:
    seen, _ = await _serve_one_stream({})
    assert [name for name, _ in seen["headers"]] == [b"host", b"cookie"]
