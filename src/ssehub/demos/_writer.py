"""Writing one chat answer into its hub topic: the events of ``_lifecycle``, in order.

:class:`AnswerWriter` publishes ``connected`` (with the owner), the
responder's ``thinking`` steps and ``content`` tokens (at most ``max_chars``
characters, then ``done`` ``{"reason": "length"}``), and ``done``
``{"reason": "complete"}`` — all within ``max_seconds``.  When the task is
stopped or fails, :meth:`AnswerWriter.stopped` / :meth:`AnswerWriter.failed`
write the one terminal event that says so.  Every event is private.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from ..errors import HubError
from ..hub import Hub
from ._responders import ChatMessage, Responder, ResponderError

__all__ = ["AnswerWriter"]

logger = logging.getLogger("ssehub.demos")


class AnswerWriter:
    """Publishes one answer to ``topic``."""

    def __init__(self, hub: Hub, topic: str, max_chars: int, max_seconds: float) -> None:
        self.hub = hub
        self.topic = topic
        self.max_chars = max_chars
        self.max_seconds = max_seconds

    async def _publish(self, event: str, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False)
        await self.hub.publish(self.topic, data, event, private=True)

    async def write(
        self, responder: Responder, messages: Sequence[ChatMessage], *, answer_id: str, owner: str
    ) -> str:
        """Publish the whole answer; return its final state (``done``)."""
        connected = {
            "message": "服务器连接成功",
            "answer_id": answer_id,
            "responder": responder.name,
            "owner": owner,
        }
        await self._publish("connected", connected)
        written = 0
        reason = "complete"
        async with asyncio.timeout(self.max_seconds):
            async with contextlib.aclosing(responder.respond(messages)) as chunks:
                async for chunk in chunks:
                    if chunk.kind == "thinking":
                        await self._publish("thinking", {"step": chunk.text})
                        continue
                    text = chunk.text
                    if written + len(text) > self.max_chars:
                        text = text[: self.max_chars - written]
                        reason = "length"
                    if text:
                        written += len(text)
                        await self._publish("content", {"text": text})
                    if reason == "length":
                        break
        await self._publish("done", {"reason": reason})
        return "done"

    async def stopped(self, cause: str) -> None:
        """The answer was stopped (``requested``, or ``no-readers``)."""
        payload = {"reason": "stopped"}
        if cause != "requested":
            payload["cause"] = cause
        await self._finish("done", payload)

    async def failed(self, exc: Exception) -> None:
        """The answer could not be finished: say why (a store outage is only logged)."""
        if isinstance(exc, ResponderError):
            await self._finish("error", {"message": str(exc)})
        elif isinstance(exc, TimeoutError):
            message = f"回答超过 {self.max_seconds:g} 秒，已中止（answer took too long）"
            await self._finish("error", {"message": message})
        elif isinstance(exc, HubError):
            logger.warning("chat answer %s could not be published: %s", self.topic, exc)
        else:
            logger.error("chat answer %s failed", self.topic, exc_info=exc)
            await self._finish("error", {"message": "内部错误（internal error）"})

    async def _finish(self, event: str, payload: dict[str, Any]) -> None:
        try:
            await self._publish(event, payload)
        except HubError as exc:
            logger.warning("chat answer %s: terminal event not published: %s", self.topic, exc)
