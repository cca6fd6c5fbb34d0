"""The chat demo without a browser: the simulated responder, answers as topics, the HTTP API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssehub.demos._answers import AnswerBook, TooManyAnswersError
from ssehub.demos._responders import (
    THINKING_STEPS,
    ChatMessage,
    Chunk,
    ResponderError,
    SimulatedResponder,
    simulated_answer,
    tokenize,
)
from ssehub.hub import Hub, open_backend
from ssehub.protocol import EventStreamParser
from tests.support.processes import HubProcess, start_hub

# -- the simulated responder ---------------------------------------------------


def test_tokens_join_back_to_the_text() -> None:
    text = simulated_answer("什么是 Server-Sent Events？")
    assert "".join(tokenize(text)) == text


def test_cjk_characters_are_single_tokens_and_words_keep_their_space() -> None:
    assert tokenize("你好 SSE world!") == ["你", "好", " ", "SSE ", "world", "!"]


def test_simulated_answer_is_deterministic_and_quotes_the_question() -> None:
    first = simulated_answer("你好")
    assert first == simulated_answer("你好")
    assert first.startswith("回答: 你好\n\n")


async def test_simulated_responder_thinks_then_streams_the_answer() -> None:
    responder = SimulatedResponder(token_delay=0, think_delay=0)
    chunks = [c async for c in responder.respond([ChatMessage("user", "你好")])]
    assert [c.text for c in chunks if c.kind == "thinking"] == list(THINKING_STEPS)
    assert "".join(c.text for c in chunks if c.kind == "content") == simulated_answer("你好")


# -- answers as hub topics -----------------------------------------------------


class _Blocking:
    """A responder that writes one token and then waits until released."""

    name = "blocking"

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def respond(self, messages: Sequence[ChatMessage]) -> AsyncIterator[Chunk]:
        yield Chunk("content", "一")
        await self.release.wait()
        yield Chunk("content", "二")

    async def aclose(self) -> None:
        return None


class _Failing:
    name = "failing"

    async def respond(self, messages: Sequence[ChatMessage]) -> AsyncIterator[Chunk]:
        yield Chunk("content", "半")
        raise ResponderError("上游坏了")

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = Hub(open_backend("memory"))
    await hub.start(background=False)
    try:
        yield hub
    finally:
        await hub.aclose()


async def _events(hub: Hub, topic: str) -> list[tuple[str, Any]]:
    result = await hub.backend.read([topic], 0, 10_000)
    return [(e.event or "message", json.loads(e.data)) for e in result.events]


async def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_an_answer_is_published_in_order_with_one_terminal_event(hub: Hub) -> None:
    book = AnswerBook(hub, SimulatedResponder(token_delay=0, think_delay=0))
    answer, cursor = await book.start([ChatMessage("user", "你好")])
    assert answer.task is not None
    await asyncio.wait_for(answer.task, 10)
    events = await _events(hub, answer.topic)
    kinds = [e for e, _ in events]
    assert kinds[0] == "connected"
    assert kinds[1:4] == ["thinking"] * 3
    assert set(kinds[4:-1]) == {"content"}
    assert events[-1] == ("done", {"reason": "complete"})
    assert "".join(d["text"] for e, d in events if e == "content") == simulated_answer("你好")
    assert book.state(answer.id) == "done"
    assert cursor.startswith(hub.backend.epoch + "-")


async def test_stop_ends_a_running_answer_with_done_stopped(hub: Hub) -> None:
    responder = _Blocking()
    book = AnswerBook(hub, responder)
    answer, _ = await book.start([ChatMessage("user", "hi")])

    async def wrote_a_token() -> bool:
        return any(e == "content" for e, _ in await _events(hub, answer.topic))

    await _wait_for(wrote_a_token)
    assert book.stop(answer.id) == "stopping"
    assert answer.task is not None
    await asyncio.wait_for(answer.task, 10)
    events = await _events(hub, answer.topic)
    assert events[-1] == ("done", {"reason": "stopped"})
    assert [d["text"] for e, d in events if e == "content"] == ["一"]
    assert book.state(answer.id) == "stopped"
    assert book.stop(answer.id) == "stopped"


async def test_running_answers_are_bounded(hub: Hub) -> None:
    responder = _Blocking()
    book = AnswerBook(hub, responder, max_running=2)
    await book.start([ChatMessage("user", "a")])
    await book.start([ChatMessage("user", "b")])
    with pytest.raises(TooManyAnswersError):
        await book.start([ChatMessage("user", "c")])
    responder.release.set()
    await asyncio.wait_for(asyncio.gather(*(a.task for a in book.running.values() if a.task)), 10)
    await book.start([ChatMessage("user", "d")])
    await book.aclose()


async def test_an_answer_is_cut_at_max_chars(hub: Hub) -> None:
    book = AnswerBook(hub, SimulatedResponder(token_delay=0, think_delay=0), max_chars=10)
    answer, _ = await book.start([ChatMessage("user", "你好")])
    assert answer.task is not None
    await asyncio.wait_for(answer.task, 10)
    events = await _events(hub, answer.topic)
    assert "".join(d["text"] for e, d in events if e == "content") == simulated_answer("你好")[:10]
    assert events[-1] == ("done", {"reason": "length"})


async def test_a_responder_error_ends_the_answer_with_an_error_event(hub: Hub) -> None:
    book = AnswerBook(hub, _Failing())
    answer, _ = await book.start([ChatMessage("user", "hi")])
    assert answer.task is not None
    await asyncio.wait_for(answer.task, 10)
    events = await _events(hub, answer.topic)
    assert events[-1] == ("error", {"message": "上游坏了"})
    assert book.state(answer.id) == "failed"


async def test_an_answer_left_unfinished_by_an_earlier_process_is_settled(hub: Hub) -> None:
    topic = "chat/0123456789abcdef"
    await hub.publish(topic, json.dumps({"message": "服务器连接成功"}), "connected")
    await hub.publish(topic, json.dumps({"text": "一半"}), "content")
    later = time.time() + 1000  # this "process" started after those events were written
    book = AnswerBook(hub, SimulatedResponder(), wall_clock=lambda: later)
    assert await book.settle("0123456789abcdef")
    assert await book.settle("0123456789abcdef")  # idempotent: one error only
    events = await _events(hub, topic)
    assert [e for e, _ in events] == ["connected", "content", "error"]
    assert "interrupted" in events[-1][1]["message"]
    assert not await book.settle("fedcba9876543210")


async def test_a_recent_unfinished_answer_of_another_node_is_left_alone(hub: Hub) -> None:
    topic = "chat/00000000000000aa"
    await hub.publish(topic, json.dumps({"text": "一"}), "content")
    earlier = time.time() - 1000  # this process started long before, the answer is fresh
    book = AnswerBook(hub, SimulatedResponder(), wall_clock=lambda: earlier)
    assert await book.settle("00000000000000aa")
    assert [e for e, _ in await _events(hub, topic)] == ["content"]


# -- the HTTP API, on a real hub process ----------------------------------------


@pytest.fixture(scope="module")
def chat_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    env = {"SSEHUB_CHAT_TOKEN_DELAY": "0.002", "SSEHUB_CHAT_THINK_DELAY": "0.002"}
    log_dir: Path = tmp_path_factory.mktemp("chat-hub")
    with start_hub(["--store", "memory", "--no-ticker"], env=env, log_dir=log_dir) as proc:
        yield proc


def _read_stream(response: httpx.Response, stop: set[str]) -> list[Any]:
    parser = EventStreamParser()
    events = []
    for chunk in response.iter_bytes():
        for event in parser.feed(chunk):
            events.append(event)
            if event.event in stop:
                return events
    return events


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """One browser: a client that keeps its cookies (answers belong to its session)."""
    with httpx.Client(timeout=20) as client:
        yield client


def test_one_shot_chat_url_streams_the_seed_events_and_ends(chat_hub: HubProcess) -> None:
    url = f"{chat_hub.url}/chat/你好"
    with httpx.stream("GET", url, timeout=20) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        parser = EventStreamParser()
        events = [e for chunk in response.iter_bytes() for e in parser.feed(chunk)]
    kinds = [e.event for e in events]
    assert kinds[:4] == ["connected", "thinking", "thinking", "thinking"]
    assert kinds[-1] == "done"
    text = "".join(json.loads(e.data)["text"] for e in events if e.event == "content")
    assert text == simulated_answer("你好")
    answer_id = json.loads(events[0].data)["answer_id"]
    assert all(e.id.startswith(answer_id + ".") for e in events)


def test_one_shot_reconnect_continues_the_same_answer(
    chat_hub: HubProcess, browser: httpx.Client
) -> None:
    url = f"{chat_hub.url}/chat/resume"
    with browser.stream("GET", url) as response:
        head = _read_stream(response, {"content"})
    resume = {"Last-Event-ID": head[-1].id}
    assert httpx.get(url, headers=resume, timeout=10).status_code == 404  # another client
    with browser.stream("GET", url, headers=resume) as response:
        rest = _read_stream(response, {"done"})
    texts = [json.loads(e.data)["text"] for e in head + rest if e.event == "content"]
    assert "".join(texts) == simulated_answer("resume")
    assert "connected" not in [e.event for e in rest]
    finished = browser.get(url, headers={"Last-Event-ID": rest[-1].id})
    assert finished.status_code == 204  # EventSource stops reconnecting


def test_post_answer_then_read_its_topic_with_resume(
    chat_hub: HubProcess, browser: httpx.Client
) -> None:
    created = browser.post(f"{chat_hub.url}/chat/answers", json={"message": "主题"})
    assert created.status_code == 201
    body = created.json()
    assert body["topic"] == f"chat/{body['answer_id']}"
    events_url = f"{chat_hub.url}/{body['events']}"
    params = {"last_event_id": body["last_event_id"]}
    with browser.stream("GET", events_url, params=params) as response:
        events = _read_stream(response, {"done", "error"})
    assert events[0].event == "connected"
    text = "".join(json.loads(e.data)["text"] for e in events if e.event == "content")
    assert text == simulated_answer("主题")
    status = browser.get(f"{chat_hub.url}/chat/answers/{body['answer_id']}").json()
    assert status["state"] == "done"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"message": "   "}, 400, "empty_message"),
        ({"message": "长" * 4001}, 413, "message_too_long"),
        ({"text": "hi"}, 400, "invalid_json"),
        ({"message": "hi", "history": [{"role": "system", "content": "x"}]}, 400, "invalid_json"),
    ],
)
def test_bad_chat_requests_get_clear_errors(
    chat_hub: HubProcess, body: dict[str, Any], status: int, code: str
) -> None:
    response = httpx.post(f"{chat_hub.url}/chat/answers", json=body, timeout=10)
    assert response.status_code == status
    assert response.json()["error"] == code


def test_unknown_answers_are_404(chat_hub: HubProcess) -> None:
    for path in ("/chat/answers/0123456789abcdef", "/chat/answers/NOT-AN-ID"):
        assert httpx.get(chat_hub.url + path, timeout=10).status_code == 404
    stop = httpx.post(f"{chat_hub.url}/chat/answers/0123456789abcdef/stop", timeout=10)
    assert stop.status_code == 404
    events = httpx.get(f"{chat_hub.url}/chat/answers/0123456789abcdef/events", timeout=10)
    assert events.status_code == 404


# -- settling reads a bounded history, under a lock of that answer only ----------


class _CountingReads:
    """Wraps ``hub.read``: counts the events and bytes read; reads of ``gate_topic`` wait."""

    def __init__(self, hub: Hub, gate_topic: str | None = None) -> None:
        self.events = 0
        self.bytes = 0
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()
        read = hub.read

        async def counted(topics: Sequence[str], after: int, limit: int) -> Any:
            if gate_topic in topics:
                self.waiting.set()
                await self.gate.wait()
            result = await read(topics, after, limit)
            self.events += len(result.events)
            self.bytes += sum(len(e.data) for e in result.events)
            return result

        hub.read = counted  # type: ignore[method-assign]


async def test_settling_a_stuffed_answer_topic_reads_a_bounded_number_of_events(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 9, finding 2: the answer check read a whole topic (anyone can publish to it)."""
    topic = "chat/00000000000000bb"
    for i in range(300):
        await hub.publish(topic, json.dumps({"text": str(i)}), "content")
    reads = _CountingReads(hub)
    book = AnswerBook(hub, SimulatedResponder(), scan_batch=10, max_scan_events=50)
    assert await book.settle("00000000000000bb")
    assert reads.events <= 50 + 10
    assert "not an answer" in caplog.text
    # nothing was published, and the topic is not scanned again
    assert [e for e, _ in await _events(hub, topic)] == ["content"] * 300
    assert await book.settle("00000000000000bb")
    assert reads.events <= 50 + 10


async def test_settling_a_topic_of_huge_events_reads_a_bounded_number_of_bytes(hub: Hub) -> None:
    topic = "chat/00000000000000cc"
    for _ in range(40):
        await hub.publish(topic, json.dumps({"text": "长" * 50_000}), "content")
    reads = _CountingReads(hub)
    book = AnswerBook(hub, SimulatedResponder(), scan_batch=4, max_scan_bytes=200_000)
    assert await book.settle("00000000000000cc")
    assert reads.bytes <= 200_000 + 4 * 300_000
    assert reads.events < 40


async def test_settling_one_answer_does_not_wait_for_another(hub: Hub) -> None:
    """The check ran under one lock for every answer: one slow read held up all the others."""
    slow, quick = "00000000000000d1", "00000000000000d2"
    await hub.publish(f"chat/{slow}", json.dumps({"text": "一"}), "content")
    await hub.publish(f"chat/{quick}", json.dumps({"reason": "complete"}), "done")
    reads = _CountingReads(hub, gate_topic=f"chat/{slow}")
    book = AnswerBook(hub, SimulatedResponder())
    held = asyncio.create_task(book.settle(slow))
    await asyncio.wait_for(reads.waiting.wait(), 5)
    assert await asyncio.wait_for(book.settle(quick), 5)
    assert book.state(quick) == "done"
    reads.gate.set()
    assert await asyncio.wait_for(held, 5)


async def test_concurrent_checks_of_one_orphaned_answer_publish_one_error(hub: Hub) -> None:
    answer_id = "00000000000000e1"
    await hub.publish(f"chat/{answer_id}", json.dumps({"text": "一半"}), "content")
    later = time.time() + 1000
    book = AnswerBook(hub, SimulatedResponder(), wall_clock=lambda: later)
    assert all(await asyncio.gather(*(book.settle(answer_id) for _ in range(5))))
    assert [e for e, _ in await _events(hub, f"chat/{answer_id}")] == ["content", "error"]
    assert book.state(answer_id) == "failed"
