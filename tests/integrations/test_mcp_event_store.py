"""``HubEventStore`` against the SDK's ``EventStore`` contract, in process, on real stores.

Ids never replay across streams or sessions (GHSA-84j6-jc92-77jm), priming
events are never replayed, lost history is a refusal (a reset), and two store
instances on one file see each other's events.  Issue 16.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp.server.streamable_http import EventMessage
from mcp_types import JSONRPCMessage, JSONRPCNotification, JSONRPCResponse
from prometheus_client import CollectorRegistry, generate_latest

from ssehub.hub import Retention
from ssehub.integrations.mcp import HubEventStore


def _note(n: int) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"n": n})


def _response(request_id: int) -> JSONRPCResponse:
    return JSONRPCResponse(jsonrpc="2.0", id=request_id, result={"ok": True})


class Sent:
    """A ``send_callback`` that keeps what it was sent."""

    def __init__(self) -> None:
        self.events: list[EventMessage] = []

    async def __call__(self, event: EventMessage) -> None:
        self.events.append(event)

    @property
    def messages(self) -> list[JSONRPCMessage]:
        return [event.message for event in self.events]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HubEventStore]:
    store = HubEventStore(f"sqlite:{tmp_path / 'mcp.db'}")
    yield store
    await store.aclose()


async def test_replay_sends_the_stream_after_the_id_with_ids_that_resume(
    store: HubEventStore,
) -> None:
    session = store.for_session("a" * 32)
    priming = await session.store_event("1", None)
    first = await session.store_event("1", _note(1))
    await session.store_event("2", _note(99))  # another stream of the session
    await session.store_event("1", _note(2))
    await session.store_event("1", _response(1))

    sent = Sent()
    assert await session.replay_events_after(priming, sent) == "1"
    assert sent.messages == [_note(1), _note(2), _response(1)]  # no priming, no stream 2
    assert sent.events[0].event_id == first

    again = Sent()
    assert await session.replay_events_after(first, again) == "1"
    assert again.messages == [_note(2), _response(1)]
    assert store.stats.replayed == 5


async def test_an_id_of_another_session_replays_nothing(store: HubEventStore) -> None:
    """Both sessions have a stream "1" and a _GET_stream: the SDK's ids repeat."""
    alice, mallory = store.for_session("alice-session"), store.for_session("mallory-session")
    alice_ids = [await alice.store_event(stream, _note(7)) for stream in ("1", "_GET_stream")]
    await alice.store_event("1", _note(8))
    await mallory.store_event("1", _note(666))

    for event_id in alice_ids:
        sent = Sent()
        assert await mallory.replay_events_after(event_id, sent) is None
        assert sent.events == []
    assert store.stats.rejected == 2
    sent = Sent()
    assert await alice.replay_events_after(alice_ids[0], sent) == "1"
    assert sent.messages == [_note(8)]


async def test_a_forged_id_naming_a_stream_with_a_foreign_seq_replays_nothing(
    store: HubEventStore,
) -> None:
    alice, mallory = store.for_session("alice-session"), store.for_session("mallory-session")
    secret = await alice.store_event("1", _note(1))
    await alice.store_event("1", _note(2))
    own = await mallory.store_event("1", _note(3))
    forged = own.split("_")[0] + "_" + secret.split("_")[1]  # mallory's stream, alice's seq

    for event_id in (forged, "garbage", "", "0" * 32 + "_zz-1", own + "\n"):
        sent = Sent()
        assert await mallory.replay_events_after(event_id, sent) is None
        assert sent.events == []


async def test_an_unscoped_store_cannot_replay_a_session_stream(store: HubEventStore) -> None:
    event_id = await store.for_session("s1").store_event("_GET_stream", _note(1))
    await store.for_session("s1").store_event("_GET_stream", _note(2))
    sent = Sent()
    assert await store.replay_events_after(event_id, sent) is None
    assert sent.events == []


async def test_lost_history_is_a_reset_not_a_silent_gap(tmp_path: Path) -> None:
    store = HubEventStore(f"sqlite:{tmp_path / 'mcp.db'}", retention=Retention(max_events=2))
    try:
        session = store.for_session("s")
        old = await session.store_event("1", _note(1))
        for n in range(2, 6):
            await session.store_event("1", _note(n))
        sent = Sent()
        assert await session.replay_events_after(old, sent) is None
        assert sent.events == []
        assert store.stats.resets == 1
    finally:
        await store.aclose()


async def test_two_instances_on_one_file_see_each_other(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'mcp.db'}"
    writer, reader = HubEventStore(url), HubEventStore(url)
    try:
        event_id = await writer.for_session("s").store_event("1", None)
        await writer.for_session("s").store_event("1", _note(1))
        sent = Sent()
        assert await reader.for_session("s").replay_events_after(event_id, sent) == "1"
        assert sent.messages == [_note(1)]
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_counters_are_exported_to_prometheus(store: HubEventStore) -> None:
    session = store.for_session("s")
    await session.store_event("1", None)
    await session.store_event("1", _note(1))
    await session.replay_events_after("nonsense", Sent())
    registry = CollectorRegistry()
    registry.register(store.collector())
    text = generate_latest(registry).decode()
    assert "ssehub_mcp_stored_total 1.0" in text
    assert "ssehub_mcp_primed_total 1.0" in text
    assert "ssehub_mcp_rejected_total 1.0" in text
