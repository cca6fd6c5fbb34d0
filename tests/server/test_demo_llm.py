"""The chat demo's OpenAI-compatible path, against a small local upstream over real HTTP.

The upstream is :class:`tests.support.fake_llm.FakeLLM`; the question picks its behaviour.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ssehub.demos._answers import AnswerBook
from ssehub.demos._responders import (
    ChatMessage,
    Chunk,
    OpenAIResponder,
    ResponderError,
)
from ssehub.hub import Hub, open_backend
from tests.support.fake_llm import FAKE_ANSWER, FAKE_TOKENS, FakeLLM
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


async def _collect(responder: OpenAIResponder, question: str) -> tuple[list[Chunk], str | None]:
    chunks: list[Chunk] = []
    try:
        async for chunk in responder.respond([ChatMessage("user", question)]):
            chunks.append(chunk)
    except ResponderError as exc:
        return chunks, str(exc)
    finally:
        await responder.aclose()
    return chunks, None


def _content(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks if c.kind == "content")


async def test_streamed_deltas_become_content_chunks(fake_llm: FakeLLM) -> None:
    responder = OpenAIResponder(fake_llm.url, "fake-1", api_key="sk-test")
    chunks, error = await _collect(responder, "你好")
    assert error is None
    assert [c.text for c in chunks if c.kind == "content"] == list(FAKE_TOKENS)
    assert chunks[0].kind == "thinking"
    headers, payload = fake_llm.requests[-1]
    assert headers["authorization"] == "Bearer sk-test"
    assert payload == {
        "model": "fake-1",
        "messages": [{"role": "user", "content": "你好"}],
        "stream": True,
    }


async def test_no_authorization_header_without_a_key(fake_llm: FakeLLM) -> None:
    _chunks, error = await _collect(OpenAIResponder(fake_llm.url, "fake-1"), "hi")
    assert error is None
    assert "authorization" not in fake_llm.requests[-1][0]


async def test_connection_broken_mid_answer_is_a_clear_error(fake_llm: FakeLLM) -> None:
    chunks, error = await _collect(OpenAIResponder(fake_llm.url, "fake-1"), "[fail] 你好")
    assert _content(chunks) == "".join(FAKE_TOKENS[:3])
    assert error is not None
    assert "upstream" in error


async def test_http_error_status_reports_the_upstream_message(fake_llm: FakeLLM) -> None:
    chunks, error = await _collect(OpenAIResponder(fake_llm.url, "fake-1"), "[401]")
    assert _content(chunks) == ""
    assert error is not None
    assert "401" in error
    assert "Incorrect API key provided" in error


async def test_error_object_mid_stream_is_reported(fake_llm: FakeLLM) -> None:
    chunks, error = await _collect(OpenAIResponder(fake_llm.url, "fake-1"), "[error]")
    assert _content(chunks) == "".join(FAKE_TOKENS[:3])
    assert error is not None
    assert "model overloaded" in error


async def test_stream_ending_without_done_is_an_error(fake_llm: FakeLLM) -> None:
    chunks, error = await _collect(OpenAIResponder(fake_llm.url, "fake-1"), "[nodone]")
    assert _content(chunks) == FAKE_ANSWER
    assert error is not None
    assert "[DONE]" in error


async def test_silent_upstream_hits_the_read_timeout(fake_llm: FakeLLM) -> None:
    responder = OpenAIResponder(fake_llm.url, "fake-1", read_timeout=0.5)
    chunks, error = await asyncio.wait_for(_collect(responder, "[hang]"), timeout=30)
    assert _content(chunks) == FAKE_TOKENS[0]
    assert error is not None
    assert "timed out" in error


async def test_unreachable_upstream_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
    _chunks, error = await _collect(OpenAIResponder(url, "fake-1", connect_timeout=5), "hi")
    assert error is not None
    assert "connection failed" in error


async def _answer_events(book: AnswerBook, hub: Hub, question: str) -> list[tuple[str, Any]]:
    answer, _ = await book.start([ChatMessage("user", question)])
    assert answer.task is not None
    await asyncio.wait_for(answer.task, timeout=30)
    result = await hub.backend.read([answer.topic], 0, 1000)
    return [(e.event or "message", json.loads(e.data)) for e in result.events]


async def test_an_upstream_failure_ends_the_answer_topic_with_an_error(fake_llm: FakeLLM) -> None:
    hub = Hub(open_backend("memory"))
    await hub.start(background=False)
    book = AnswerBook(hub, OpenAIResponder(fake_llm.url, "fake-1"))
    try:
        good = await _answer_events(book, hub, "你好")
        bad = await _answer_events(book, hub, "[fail] 你好")
    finally:
        await book.aclose()
        await hub.aclose()
    assert good[-1] == ("done", {"reason": "complete"})
    assert "".join(d["text"] for e, d in good if e == "content") == FAKE_ANSWER
    assert bad[-1][0] == "error"
    assert "upstream" in bad[-1][1]["message"]
    assert "".join(d["text"] for e, d in bad if e == "content") == "".join(FAKE_TOKENS[:3])
