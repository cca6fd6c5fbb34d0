"""The chat demo's answers as resumable runs, in process (issue 14, issue 11 demos).

A run's lifecycle is read from the store, so another book on the same store
(another node) and a book started later (a restarted hub) see the same state;
a stop asked on another node reaches the node that runs the answer; a run
nobody reads is stopped upstream after the grace period (a fake clock); the
limits are per client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ssehub.demos._answers import AnswerBook, TooManyAnswersError
from ssehub.demos._responders import ChatMessage, Chunk, OpenAIResponder, SimulatedResponder
from ssehub.hub import Hub, Selector, TopicGrant
from tests.support.clock import FakeClock
from tests.support.fake_llm import FakeLLM
from tests.support.hubs import make_backend, open_hub
from tests.support.polling import apoll_until

ASK = [ChatMessage("user", "hi")]


class Waiting:
    """A responder that writes one token, then waits until released (or cancelled)."""

    name = "waiting"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.cancelled = 0

    async def respond(self, messages: Sequence[ChatMessage]) -> AsyncIterator[Chunk]:
        yield Chunk("content", "一")
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        yield Chunk("content", "二")

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with open_hub() as hub:
        yield hub


async def events_of(hub: Hub, answer_id: str) -> list[tuple[str, Any]]:
    result = await hub.read([f"chat/{answer_id}"], 0, 10_000)
    return [(e.event or "message", json.loads(e.data)) for e in result.events]


async def has_content(hub: Hub, answer_id: str) -> bool:
    return any(kind == "content" for kind, _ in await events_of(hub, answer_id))


async def test_every_event_of_an_answer_is_private_and_names_its_owner(hub: Hub) -> None:
    book = AnswerBook(hub, SimulatedResponder(token_delay=0, think_delay=0))
    answer, _ = await book.start(ASK, owner="owner-hash")
    assert answer.task is not None
    await asyncio.wait_for(answer.task, 10)
    result = await hub.read([answer.topic], 0, 10_000)
    assert result.events
    assert all(e.private for e in result.events)
    assert json.loads(result.events[0].data)["owner"] == "owner-hash"


async def test_another_node_reads_the_lifecycle_from_the_store(hub: Hub) -> None:
    waiting = Waiting()
    node_a = AnswerBook(hub, waiting)
    node_b = AnswerBook(hub, SimulatedResponder())
    answer, _ = await node_a.start(ASK, owner="me")
    await apoll_until(lambda: has_content(hub, answer.id), "the first token")
    running = await node_b.info(answer.id)
    assert running is not None
    assert (running.state, running.owner) == ("running", "me")
    waiting.release.set()
    assert answer.task is not None
    await asyncio.wait_for(answer.task, 10)
    done = await node_b.info(answer.id)
    assert done is not None
    assert (done.state, done.owner) == ("done", "me")
    assert await node_b.info("0123456789abcdef") is None


@pytest.mark.parametrize(
    ("terminal", "payload", "state"),
    [
        ("done", {"reason": "complete"}, "done"),
        ("done", {"reason": "length"}, "done"),
        ("done", {"reason": "stopped"}, "stopped"),
        ("error", {"message": "boom"}, "failed"),
    ],
)
async def test_a_restarted_hub_reads_each_final_state_from_the_store(
    hub: Hub, terminal: str, payload: dict[str, str], state: str
) -> None:
    topic = "chat/00000000000000f1"
    await hub.publish(topic, json.dumps({"owner": "me"}), "connected", private=True)
    await hub.publish(topic, json.dumps({"text": "一"}), "content", private=True)
    await hub.publish(topic, json.dumps(payload), terminal, private=True)
    later = AnswerBook(hub, SimulatedResponder())
    info = await later.info("00000000000000f1")
    assert info is not None
    assert (info.state, info.owner) == (state, "me")


async def test_a_stop_asked_on_another_node_stops_the_answer_where_it_runs(hub: Hub) -> None:
    waiting = Waiting()
    node_a = AnswerBook(hub, waiting)
    node_b = AnswerBook(hub, SimulatedResponder())
    hub.add_observer(node_a.observe)
    hub.add_observer(node_b.observe)
    answer, _ = await node_a.start(ASK, owner="me")
    await apoll_until(lambda: has_content(hub, answer.id), "the first token")
    assert await node_b.request_stop(answer.id) == "stopping"
    assert answer.task is not None
    await asyncio.wait_for(answer.task, 10)
    events = await events_of(hub, answer.id)
    assert [kind for kind, _ in events] == ["connected", "content", "stop", "done"]
    assert events[-1][1] == {"reason": "stopped"}
    assert waiting.cancelled == 1
    info = await node_b.info(answer.id)
    assert info is not None
    assert info.state == "stopped"


async def test_an_answer_nobody_reads_is_stopped_after_the_grace_period(hub: Hub) -> None:
    clock, waiting = FakeClock(), Waiting()
    book = AnswerBook(hub, waiting, reader_grace=30.0, clock=clock)
    answer, _ = await book.start(ASK)
    await apoll_until(lambda: has_content(hub, answer.id), "the first token")
    reader = await hub.open([answer.topic])  # a reader keeps it going, whatever the time
    clock.advance(100)
    assert book.tick(clock()) == []
    reader.close()
    reader.end()
    assert book.tick(clock()) == []  # the grace starts now
    clock.advance(29.9)
    assert book.tick(clock()) == []
    clock.advance(0.1)
    assert book.tick(clock()) == [answer.id]
    assert answer.task is not None
    await asyncio.wait_for(answer.task, 10)
    assert waiting.cancelled == 1
    events = await events_of(hub, answer.id)
    assert events[-1] == ("done", {"reason": "stopped", "cause": "no-readers"})


async def test_an_answer_whose_client_never_came_is_stopped_after_the_grace(hub: Hub) -> None:
    clock, waiting = FakeClock(), Waiting()
    book = AnswerBook(hub, waiting, reader_grace=10.0, clock=clock)
    answer, _ = await book.start(ASK)
    clock.advance(10)
    assert book.tick(clock()) == [answer.id]


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as llm:
        yield llm


async def test_an_unread_llm_answer_cancels_its_upstream_request(
    hub: Hub, fake_llm: FakeLLM
) -> None:
    """The --llm-url request is closed: no tokens are paid for nobody (a fake clock)."""
    clock = FakeClock()
    responder = OpenAIResponder(fake_llm.url, "fake-1", read_timeout=60)
    book = AnswerBook(hub, responder, reader_grace=5.0, clock=clock)
    abandoned = fake_llm.abandoned
    answer, _ = await book.start([ChatMessage("user", "[hang] 说点什么")])
    await apoll_until(lambda: has_content(hub, answer.id), "the first upstream token")
    clock.advance(5)
    assert book.tick(clock()) == [answer.id]
    assert answer.task is not None
    await asyncio.wait_for(answer.task, 10)

    async def upstream_saw_the_close() -> bool:
        return fake_llm.abandoned == abandoned + 1

    await apoll_until(upstream_saw_the_close, "the upstream request to be cancelled")
    assert (await events_of(hub, answer.id))[-1][0] == "done"
    await book.aclose()


async def test_limits_are_per_client_not_for_everyone(hub: Hub) -> None:
    waiting = Waiting()
    book = AnswerBook(hub, waiting, max_running=10, max_running_per_client=2)
    await book.start(ASK, owner="alice", client="10.0.0.1")
    await book.start(ASK, owner="alice", client="10.0.0.1")
    with pytest.raises(TooManyAnswersError):
        await book.start(ASK, owner="alice", client="10.0.0.9")  # same session
    with pytest.raises(TooManyAnswersError):
        await book.start(ASK, owner="mallory", client="10.0.0.1")  # same address
    await book.start(ASK, owner="bob", client="10.0.0.2")  # everyone else still gets answers
    assert len(book.running) == 3
    await book.aclose()


async def test_a_reader_on_another_node_keeps_the_answer_going(tmp_path: Path) -> None:
    """Two hubs on one SQLite file are two nodes: node B's reader counts on node A."""
    clock, waiting = FakeClock(), Waiting()
    path = tmp_path / "hub.db"
    async with (
        open_hub(make_backend("sqlite", path=path)) as hub_a,
        open_hub(make_backend("sqlite", path=path)) as hub_b,
    ):
        node_a = AnswerBook(hub_a, waiting, reader_grace=30.0, clock=clock)
        node_b = AnswerBook(hub_b, SimulatedResponder(), reader_grace=30.0, clock=clock)
        hub_a.add_observer(node_a.observe)
        hub_b.add_observer(node_b.observe)
        answer, _ = await node_a.start(ASK)
        await apoll_until(lambda: answer.id in node_b.remote, "node B to hear of the answer")
        reader = await hub_b.open([answer.topic])  # the only reader is on node B

        async def node_a_heard_it() -> bool:
            return answer.read_elsewhere_at == clock()

        for _ in range(12):  # two minutes, in steps of a third of the grace
            clock.advance(10)
            node_b.tick(clock())
            await apoll_until(node_a_heard_it, "node B's reader event to reach node A")
            assert node_a.tick(clock()) == []
        reader.close()
        reader.end()
        stopped: list[str] = []
        for _ in range(7):  # its last reader event ages out (30 s), then the grace runs (30 s)
            clock.advance(10)
            node_b.tick(clock())
            stopped += node_a.tick(clock())
        assert stopped == [answer.id]
        assert answer.task is not None
        await asyncio.wait_for(answer.task, 10)
        assert waiting.cancelled == 1
        info = await node_b.info(answer.id)
        assert info is not None
        assert info.state == "stopped"  # the reader events never count as the last event


async def test_the_one_shot_relay_leaves_out_other_nodes_control_events(hub: Hub) -> None:
    from ssehub.demos._chat import _relay  # the one-shot stream's relay, as ssehub serves it

    topic = "chat/00000000000000a7"
    before = hub.format_cursor(await hub.head())
    for event, data in [
        ("connected", {"owner": "me"}),
        ("content", {"text": "一"}),
        ("reader", {}),
        ("stop", {"cause": "requested"}),
        ("done", {"reason": "stopped"}),
    ]:
        await hub.publish(topic, json.dumps(data), event, private=True)
    grant = TopicGrant.of([Selector.exact(topic)])
    stream = await hub.open([topic], before, grant=grant)
    relayed = [e.event async for e in _relay("00000000000000a7", stream) if e.event]
    assert relayed == ["connected", "content", "done"]
