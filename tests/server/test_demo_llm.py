"""The chat demo's OpenAI-compatible path, against a small local upstream over real HTTP.

:class:`FakeLLM` speaks the OpenAI streaming chat-completions format
(``data: {"choices":[{"delta":{"content":…}}]}`` … ``data: [DONE]``) on a real
loopback port (uvicorn in a thread).  The last user message picks a behaviour:
``[fail]`` breaks the connection mid-answer, ``[401]`` refuses, ``[hang]``
sends one token and then nothing, ``[error]`` sends an error object mid-stream,
``[nodone]`` ends cleanly but without ``[DONE]``.  The browser tests use it too.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ssehub.demos._answers import AnswerBook
from ssehub.demos._responders import (
    ChatMessage,
    Chunk,
    OpenAIResponder,
    ResponderError,
)
from ssehub.hub import Hub, open_backend
from tests.support.processes import free_port

#: What the fake model answers, one delta per item.
FAKE_TOKENS = ("你好", "！", "这是", "来自", "假", "模型", "的", "回答", "。")
FAKE_ANSWER = "".join(FAKE_TOKENS)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "model": "fake-1",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


class _Broken(Exception):
    """Raised inside the fake's body generator: uvicorn drops the connection."""


class FakeLLM:
    """An OpenAI-compatible streaming endpoint on a free loopback port, in a thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-llm", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    async def _chat(self, request: Request) -> Response:
        payload = await request.json()
        self.requests.append((dict(request.headers), payload))
        question = payload["messages"][-1]["content"]
        if "[401]" in question:
            return JSONResponse(
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request"}},
                status_code=401,
            )
        return StreamingResponse(self._stream(question), media_type="text/event-stream")

    async def _stream(self, question: str) -> AsyncIterator[bytes]:
        yield _chunk({"role": "assistant"})
        for index, token in enumerate(FAKE_TOKENS):
            if index == 3 and "[fail]" in question:
                raise _Broken("connection dropped on purpose")
            if index == 3 and "[error]" in question:
                yield b'data: {"error": {"message": "model overloaded"}}\n\n'
                return
            if index == 1 and "[hang]" in question:
                await asyncio.sleep(3600)
            yield _chunk({"content": token})
        yield _chunk({}, finish="stop")
        if "[nodone]" not in question:
            yield b"data: [DONE]\n\n"


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
