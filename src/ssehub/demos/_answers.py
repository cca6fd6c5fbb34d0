"""Chat answers as hub topics: each answer is published to ``chat/<answer_id>``.

An answer runs as a background task, independent of any browser connection,
so a page reloaded mid-answer finds it still going (or done) and resumes from
its cursor with no repeats and no gaps.  Events of an answer topic, in order:

* ``connected`` ``{"message", "answer_id", "responder"}``
* ``thinking`` ``{"step"}`` (several)
* ``content`` ``{"text"}`` (one per token)
* then exactly one terminal event: ``done`` ``{"reason"}`` (``complete``,
  ``stopped``, ``length``) or ``error`` ``{"message"}``.

Memory stays bounded: at most ``max_running`` answers at once, each at most
``max_chars`` characters and ``max_seconds`` long; only the last
``keep_finished`` finished answers are remembered for status queries.
Checking an answer's history (:meth:`AnswerBook.settle`) reads a bounded
number of events and bytes, under a lock of that answer only.

An answer whose task died with its hub process (a restart) is *orphaned*: its
topic has history but no terminal event.  :meth:`AnswerBook.settle` publishes
the missing ``error`` the first time someone asks for such an answer, so no
page waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import HubError
from ..hub import Hub, StoredEvent
from ._responders import ChatMessage, Responder, ResponderError

__all__ = ["ANSWER_ID", "TERMINAL_EVENTS", "Answer", "AnswerBook", "TooManyAnswersError"]

logger = logging.getLogger("ssehub.demos")

#: The shape of an answer id (also the last segment of its topic).
ANSWER_ID = re.compile(r"[0-9a-f]{16}")
TERMINAL_EVENTS = frozenset({"done", "error"})
INTERRUPTED = "回答被中断：hub 重启了（the answer was interrupted by a restart）"


class TooManyAnswersError(Exception):
    """``max_running`` answers are already being written."""


@dataclass(slots=True)
class Answer:
    """One answer: its id, topic, state and task."""

    id: str
    #: ``running``, then ``done``, ``stopped`` or ``error``.
    state: str = "running"
    stop_requested: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def topic(self) -> str:
        return f"chat/{self.id}"


@dataclass(slots=True)
class _Settling:
    """The lock of one answer being settled, and how many requests wait on it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class AnswerBook:
    """Starts, stops and remembers answers; publishes them into the hub."""

    def __init__(
        self,
        hub: Hub,
        responder: Responder,
        *,
        max_running: int = 32,
        max_chars: int = 20_000,
        max_seconds: float = 600.0,
        keep_finished: int = 1000,
        stale_after: float = 180.0,
        wall_clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: secrets.token_hex(8),
        scan_batch: int = 32,
        max_scan_events: int | None = None,
        max_scan_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.hub = hub
        self.responder = responder
        self.max_running = max_running
        self.max_chars = max_chars
        self.max_seconds = max_seconds
        self.keep_finished = keep_finished
        self.stale_after = stale_after
        self._wall_clock = wall_clock
        self._new_id = new_id
        self.started_at = wall_clock()
        self.running: dict[str, Answer] = {}
        self.finished: OrderedDict[str, str] = OrderedDict()
        self.scan_batch = scan_batch
        #: An answer is at most ``max_chars`` tokens, a few thinking steps and two more events.
        self.max_scan_events = max_scan_events or max_chars + 1000
        self.max_scan_bytes = max_scan_bytes
        #: answer id -> its settle lock, only while a request uses it.
        self._settling: dict[str, _Settling] = {}
        #: Answers whose topic was over the scan bounds (not scanned again).
        self._unchecked: OrderedDict[str, None] = OrderedDict()

    # -- life cycle ----------------------------------------------------------

    async def start(self, messages: Sequence[ChatMessage]) -> tuple[Answer, str]:
        """Begin answering ``messages``; return the answer and a cursor before its events.

        Raises :class:`TooManyAnswersError` when ``max_running`` answers run.
        """
        if len(self.running) >= self.max_running:
            raise TooManyAnswersError(f"{self.max_running} answers are already being written")
        answer = Answer(self._new_id())
        cursor = self.hub.format_cursor(await self.hub.head())
        self.running[answer.id] = answer
        answer.task = asyncio.create_task(self._run(answer, list(messages)))
        return answer, cursor

    def stop(self, answer_id: str) -> str | None:
        """Ask a running answer to stop; return its state (``None``: unknown here)."""
        answer = self.running.get(answer_id)
        if answer is None:
            return self.finished.get(answer_id)
        if answer.task is not None and not answer.stop_requested:
            answer.stop_requested = True
            answer.task.cancel()
        return "stopping"

    def state(self, answer_id: str) -> str | None:
        answer = self.running.get(answer_id)
        return answer.state if answer is not None else self.finished.get(answer_id)

    async def aclose(self) -> None:
        """Cancel every running answer (the hub is going away) and close the responder."""
        tasks = [a.task for a in self.running.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.responder.aclose()

    # -- writing an answer ---------------------------------------------------

    async def _publish(self, answer: Answer, event: str, payload: dict[str, Any]) -> None:
        await self.hub.publish(answer.topic, json.dumps(payload, ensure_ascii=False), event)

    async def _run(self, answer: Answer, messages: list[ChatMessage]) -> None:
        try:
            answer.state = await self._write(answer, messages)
        except asyncio.CancelledError:
            if not answer.stop_requested:
                answer.state = "error"
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            answer.state = "stopped"
            await self._finish(answer, "done", {"reason": "stopped"})
        except ResponderError as exc:
            answer.state = "error"
            await self._finish(answer, "error", {"message": str(exc)})
        except TimeoutError:
            answer.state = "error"
            await self._finish(
                answer,
                "error",
                {"message": f"回答超过 {self.max_seconds:g} 秒，已中止（answer took too long）"},
            )
        except HubError as exc:
            answer.state = "error"
            logger.warning("chat answer %s could not be published: %s", answer.id, exc)
        except Exception:
            answer.state = "error"
            logger.exception("chat answer %s failed", answer.id)
            await self._finish(answer, "error", {"message": "内部错误（internal error）"})
        finally:
            self.running.pop(answer.id, None)
            self._remember(answer.id, answer.state)

    async def _finish(self, answer: Answer, event: str, payload: dict[str, Any]) -> None:
        try:
            await self._publish(answer, event, payload)
        except HubError as exc:
            logger.warning("chat answer %s: terminal event not published: %s", answer.id, exc)

    async def _write(self, answer: Answer, messages: list[ChatMessage]) -> str:
        """Publish the whole answer; return its final state."""
        await self._publish(
            answer,
            "connected",
            {
                "message": "服务器连接成功",
                "answer_id": answer.id,
                "responder": self.responder.name,
            },
        )
        written = 0
        reason = "complete"
        async with asyncio.timeout(self.max_seconds):
            async with contextlib.aclosing(self.responder.respond(messages)) as chunks:
                async for chunk in chunks:
                    if chunk.kind == "thinking":
                        await self._publish(answer, "thinking", {"step": chunk.text})
                        continue
                    text = chunk.text
                    if written + len(text) > self.max_chars:
                        text = text[: self.max_chars - written]
                        reason = "length"
                    if text:
                        written += len(text)
                        await self._publish(answer, "content", {"text": text})
                    if reason == "length":
                        break
        await self._publish(answer, "done", {"reason": reason})
        return "done"

    # -- answers left behind by a previous process ---------------------------

    async def settle(self, answer_id: str) -> bool:
        """Make sure the answer's topic ends; return ``False`` if it has no history at all.

        An answer not running here whose last event is not terminal, and that
        was last written before this process started (or long ago), gets an
        ``error`` event saying it was interrupted.

        Bounded: an answer known here (running, finished or already settled)
        reads nothing; otherwise its topic is scanned in batches of
        ``scan_batch`` events, at most ``max_scan_events`` events and
        ``max_scan_bytes`` bytes of data (plus one batch).  A topic longer than
        that was not written by an answer (it is at most ``max_chars`` tokens):
        it is logged, left as it is and not scanned again.  Answers are settled
        one at a time *per answer*, never behind one another.
        """
        if answer_id in self.running or answer_id in self.finished:
            return True
        if answer_id in self._unchecked:
            return True
        settling = self._settling.get(answer_id)
        if settling is None:
            settling = self._settling[answer_id] = _Settling()
        settling.users += 1
        try:
            async with settling.lock:
                return await self._settle(answer_id)
        finally:
            settling.users -= 1
            if not settling.users:
                del self._settling[answer_id]

    async def _settle(self, answer_id: str) -> bool:
        if answer_id in self.running or answer_id in self.finished:
            return True  # settled by a request that held the lock before us
        topic = f"chat/{answer_id}"
        last, complete = await self._last_event(topic)
        if not complete:
            logger.warning(
                "chat answer %s: history over %d events or %d bytes, not an answer; left as is",
                answer_id,
                self.max_scan_events,
                self.max_scan_bytes,
            )
            self._unchecked[answer_id] = None
            while len(self._unchecked) > self.keep_finished:
                self._unchecked.popitem(last=False)
            return True
        if last is None:
            return False
        if last.event in TERMINAL_EVENTS:
            self._remember(answer_id, "done" if last.event == "done" else "error")
            return True
        now = self._wall_clock()
        if last.time < self.started_at or now - last.time > self.stale_after:
            interrupted = {"message": INTERRUPTED}
            await self.hub.publish(topic, json.dumps(interrupted, ensure_ascii=False), "error")
            self._remember(answer_id, "error")
        return True

    def _remember(self, answer_id: str, state: str) -> None:
        self.finished[answer_id] = state
        while len(self.finished) > self.keep_finished:
            self.finished.popitem(last=False)

    async def _last_event(self, topic: str) -> tuple[StoredEvent | None, bool]:
        """The topic's last event (``None``: no event), and ``False`` if over the scan bounds."""
        after = 0
        last: StoredEvent | None = None
        events = size = 0
        while True:
            result = await self.hub.read([topic], after, self.scan_batch)
            if result.events:
                last = result.events[-1]
                after = last.seq
                events += len(result.events)
                size += sum(len(e.data) for e in result.events)
            if not result.more:
                return last, True
            if events >= self.max_scan_events or size >= self.max_scan_bytes:
                return last, False
