"""Where the chat demo's answers come from: a simulated responder, or an LLM.

A responder turns a conversation into an async stream of :class:`Chunk` s:
``thinking`` steps, then ``content`` pieces (tokens).  It raises
:class:`ResponderError` with a sentence for people when it can't answer.

* :class:`SimulatedResponder` — deterministic, no network: the answer is a pure
  function of the last user message (:func:`simulated_answer`), cut into
  tokens by :func:`tokenize` (one CJK character, or one ASCII word with its
  trailing space, per token), ``token_delay`` seconds apart.
* :class:`OpenAIResponder` — any OpenAI-compatible streaming chat-completions
  endpoint: ``POST {url}`` with ``{"model", "messages", "stream": true}`` and
  ``Authorization: Bearer $OPENAI_API_KEY`` when that is set; the answer is
  read as an event stream (``data: {"choices":[{"delta":{"content":…}}]}``,
  ending with ``data: [DONE]``) by :class:`~ssehub.protocol.EventStreamParser`.
  Every wait is bounded (connect, each read, the whole answer).
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from ..errors import EventTooLargeError
from ..protocol import EventStreamParser

__all__ = [
    "THINKING_STEPS",
    "ChatMessage",
    "Chunk",
    "OpenAIResponder",
    "Responder",
    "ResponderError",
    "SimulatedResponder",
    "simulated_answer",
    "tokenize",
]

#: The seed's thinking steps.
THINKING_STEPS = ("分析问题", "搜索知识", "构建回答")

_TOKEN = re.compile(r"[0-9A-Za-z_]+(?:['’.-][0-9A-Za-z_]+)* ?|\s|.", re.DOTALL)

_PARAGRAPHS = (
    "这是 ssehub 内置的模拟回答：每个词元都是一个 content 事件，发布在 hub 的主题里。"
    "刷新页面时，浏览器凭 Last-Event-ID 从断开的地方接着读，不重复，也不遗漏。",
    "Server-Sent Events 只是一个普通的 HTTP 响应（text/event-stream），"
    "浏览器自带的 EventSource 会在断线后自动重连。ssehub 给每个事件一个 id，"
    "所以重连后能精确续传。",
    "模拟回答不联网、完全确定：同一个问题总是得到同一段文字。"
    "用 --llm-url 指向任何兼容 OpenAI 的流式接口，就能换成真正的模型。",
)


class ResponderError(Exception):
    """A responder could not (finish to) answer; the message is shown to the user."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn of a conversation, as the OpenAI API names it."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of an answer: a ``thinking`` step or a piece of ``content``."""

    kind: Literal["thinking", "content"]
    text: str


class Responder(Protocol):
    """Answers a conversation (the last message is the user's question)."""

    #: Shown on the chat page: ``simulated`` or the model's name.
    name: str

    def respond(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[Chunk, None]: ...

    async def aclose(self) -> None: ...


def simulated_answer(message: str) -> str:
    """The simulated responder's full answer to ``message`` (deterministic)."""
    question = " ".join(message.split()) or "（空）"
    if len(question) > 200:
        question = question[:200] + "…"
    paragraph = _PARAGRAPHS[zlib.crc32(question.encode("utf-8")) % len(_PARAGRAPHS)]
    return f"回答: {question}\n\n{paragraph}"


def tokenize(text: str) -> list[str]:
    """Cut ``text`` into tokens whose concatenation is ``text``."""
    return _TOKEN.findall(text)


class SimulatedResponder:
    """The built-in responder: the seed's thinking steps, then :func:`simulated_answer`."""

    name = "simulated"

    def __init__(self, *, token_delay: float = 0.04, think_delay: float = 0.4) -> None:
        self.token_delay = token_delay
        self.think_delay = think_delay

    async def respond(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[Chunk, None]:
        question = messages[-1].content if messages else ""
        for step in THINKING_STEPS:
            yield Chunk("thinking", step)
            await asyncio.sleep(self.think_delay)
        for token in tokenize(simulated_answer(question)):
            yield Chunk("content", token)
            await asyncio.sleep(self.token_delay)

    async def aclose(self) -> None:
        return None


class OpenAIResponder:
    """Stream answers from an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_event_size: int = 1024 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.model = model
        self.name = model
        self._api_key = api_key
        self._max_event_size = max_event_size
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def respond(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[Chunk, None]:
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        payload = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
        }
        yield Chunk("thinking", f"连接模型 {self.model}")
        started = False
        try:
            async with self._client.stream(
                "POST", self.url, json=payload, headers=headers
            ) as response:
                if response.status_code != 200:
                    detail = await _error_detail(response)
                    raise ResponderError(
                        f"模型服务返回 HTTP {response.status_code}（upstream answered "
                        f"HTTP {response.status_code}）: {detail}"
                    )
                yield Chunk("thinking", "等待模型输出")
                parser = EventStreamParser(max_event_size=self._max_event_size)
                async for raw in response.aiter_bytes():
                    for event in parser.feed(raw):
                        if event.data.strip() == "[DONE]":
                            return
                        for text in _delta_texts(event.data):
                            started = True
                            yield Chunk("content", text)
        except httpx.TimeoutException as exc:
            raise ResponderError(
                f"模型服务超时（upstream timed out: {type(exc).__name__}）"
            ) from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            if started:
                raise ResponderError(
                    f"模型服务在回答中途断开（upstream connection broke mid-answer: {reason}）"
                ) from exc
            raise ResponderError(
                f"模型服务连接失败（upstream connection failed: {reason}）"
            ) from exc
        except EventTooLargeError as exc:
            raise ResponderError(
                f"模型服务发来的事件过大（upstream event too large: {exc}）"
            ) from exc
        raise ResponderError("模型服务在回答中途断开（upstream closed the stream before [DONE]）")


def _delta_texts(data: str) -> list[str]:
    """The content pieces of one streamed chunk; raises on an upstream error object."""
    try:
        obj: Any = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ResponderError(
            f"模型服务发来无效的 JSON（upstream sent invalid JSON: {exc}）"
        ) from exc
    if not isinstance(obj, dict):
        raise ResponderError("模型服务发来意外的数据（upstream chunk is not a JSON object）")
    error = obj.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        raise ResponderError(f"模型服务报错（upstream error）: {message}")
    texts: list[str] = []
    for choice in obj.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str) and content:
            texts.append(content)
    return texts


async def _error_detail(response: httpx.Response, limit: int = 2048) -> str:
    """A short description of an upstream error answer (its JSON message, or text)."""
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    text = body[:limit].decode("utf-8", errors="replace").strip()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return text or response.reason_phrase
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        return str(obj["error"].get("message") or text)
    return text or response.reason_phrase
