"""An OpenAI-compatible streaming chat endpoint on a real loopback port (uvicorn in a thread).

:class:`FakeLLM` speaks the OpenAI streaming chat-completions format
(``data: {"choices":[{"delta":{"content":…}}]}`` … ``data: [DONE]``).  The last
user message picks a behaviour: ``[fail]`` breaks the connection mid-answer,
``[401]`` refuses, ``[hang]`` sends one token and then nothing, ``[error]``
sends an error object mid-stream, ``[nodone]`` ends cleanly but without
``[DONE]``, ``[markdown]`` answers :data:`MARKDOWN_ANSWER` (Markdown with a
code block, and HTML that must never reach a page as HTML).  ``abandoned``
counts the answers whose client went away before their end (the upstream
request was cancelled).  The chat demo's server and browser tests use it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.polling import poll_until
from tests.support.ports import free_port

__all__ = ["FAKE_ANSWER", "FAKE_TOKENS", "MARKDOWN_ANSWER", "FakeLLM"]

#: What the fake model answers, one delta per item.
FAKE_TOKENS = ("你好", "！", "这是", "来自", "假", "模型", "的", "回答", "。")
FAKE_ANSWER = "".join(FAKE_TOKENS)
#: A hostile Markdown answer: HTML, a script, a javascript: link, and real Markdown.
MARKDOWN_ANSWER = (
    "## 结果 Result\n\n"
    "Here is **bold**, *italic* and `inline <b>code</b>`.\n"
    '<img src=x onerror="window.__xss = 1">\n\n'
    "<script>window.__xss = 2</script>\n\n"
    "- [safe link](https://example.com/docs)\n"
    "- [bad link](javascript:window.__xss=3)\n\n"
    "```python\n"
    'print("<script>alert(1)</script>")\n'
    "```\n"
)


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
        self.abandoned = 0
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

        def started() -> bool:
            assert self._thread.is_alive(), "the fake LLM server stopped before it started"
            return bool(self._server.started)

        poll_until(started, "the fake LLM server to start", 15, interval=0.01)
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
        try:
            async for chunk in self._chunks(question):
                yield chunk
        except (asyncio.CancelledError, GeneratorExit):
            self.abandoned += 1
            raise

    async def _chunks(self, question: str) -> AsyncIterator[bytes]:
        yield _chunk({"role": "assistant"})
        if "[markdown]" in question:
            for start in range(0, len(MARKDOWN_ANSWER), 7):
                yield _chunk({"content": MARKDOWN_ANSWER[start : start + 7]})
            yield b"data: [DONE]\n\n"
            return
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
