"""The chat demo's HTTP side.

The hub's refusals (a store outage, a draining hub) propagate as
:class:`~ssehub.errors.HubError` and are answered by the server's one error
table, as on every route.

Routes (answers live in hub topics ``chat/<answer_id>``, see ``_answers``):

* ``GET /chat`` — the chat page.
* ``GET /chat/answers`` — ``{"responder", "running", "max_running"}``.
* ``POST /chat/answers`` ``{"message": "…", "history": [{"role", "content"}…]}`` →
  ``201 {"answer_id", "topic", "events", "last_event_id"}``: open
  ``EventSource(events + "?last_event_id=" + last_event_id)`` to read the whole
  answer, and resume later from any event's ``lastEventId``.
* ``GET /chat/answers/{id}`` — ``{"answer_id", "topic", "state"}``.
* ``POST /chat/answers/{id}/stop`` — cancel a running answer (it ends with
  ``done`` ``{"reason": "stopped"}``).
* ``GET /chat/answers/{id}/events`` — the answer topic as a hub stream, with resume.
* ``GET /chat/{message}`` — the seed's one-shot stream: starts an answer and
  relays its events, then ends after ``done``/``error``.  Its ids are
  ``<answer_id>.<cursor>``, so a browser's automatic reconnect (which sends
  ``Last-Event-ID``) continues the same answer instead of asking again; once
  the answer is over, a reconnect gets ``204`` (which stops ``EventSource``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..hub import RESET_EVENT, Hub, Stream, parse_cursor
from ..protocol import EventStreamParser, ServerSentEvent
from ..server import (
    ApiError,
    EventSourceResponse,
    HubStreamResponse,
    ServerSettings,
    admit_stream,
    last_event_id_of,
)
from ._answers import ANSWER_ID, TERMINAL_EVENTS, Answer, AnswerBook, TooManyAnswersError
from ._responders import ChatMessage

__all__ = ["ChatAPI"]

MAX_MESSAGE_CHARS = 4000
MAX_HISTORY_MESSAGES = 20
MAX_BODY = 256 * 1024
_ONE_SHOT_ID = re.compile(r"([0-9a-f]{16})\.(.+)")


class ChatAPI:
    """Endpoints of the chat demo, over one :class:`AnswerBook`."""

    def __init__(self, hub: Hub, settings: ServerSettings, book: AnswerBook) -> None:
        self.hub = hub
        self.settings = settings
        self.book = book

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/chat/answers", self.info, methods=["GET"]),
            Route("/chat/answers", self.create, methods=["POST"]),
            Route("/chat/answers/{answer_id}", self.status, methods=["GET"]),
            Route("/chat/answers/{answer_id}/stop", self.stop, methods=["POST"]),
            Route("/chat/answers/{answer_id}/events", self.events, methods=["GET"]),
            Route("/chat/{message:path}", self.one_shot, methods=["GET"]),
        ]

    async def info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "responder": self.book.responder.name,
                "running": len(self.book.running),
                "max_running": self.book.max_running,
            }
        )

    async def create(self, request: Request) -> Response:
        messages = await _read_messages(request)
        answer, cursor = await self._start(messages)
        return JSONResponse(
            {
                "answer_id": answer.id,
                "topic": answer.topic,
                "events": f"chat/answers/{answer.id}/events",
                "last_event_id": cursor,
            },
            status_code=201,
        )

    async def status(self, request: Request) -> Response:
        answer_id = _answer_id(request)
        state = self.book.state(answer_id)
        if state is None:
            raise ApiError(404, "unknown_answer", f"no answer {answer_id} on this hub")
        return JSONResponse({"answer_id": answer_id, "topic": f"chat/{answer_id}", "state": state})

    async def stop(self, request: Request) -> Response:
        answer_id = _answer_id(request)
        state = self.book.stop(answer_id)
        if state is None:
            raise ApiError(404, "unknown_answer", f"no answer {answer_id} on this hub")
        return JSONResponse({"answer_id": answer_id, "state": state}, status_code=202)

    async def events(self, request: Request) -> Response:
        answer_id = _answer_id(request)
        admit_stream(self.hub, self.settings)  # refuse early, before any read
        if not await self._settle(answer_id):
            raise ApiError(404, "unknown_answer", f"no answer {answer_id} in the hub's history")
        return HubStreamResponse(await self._open(f"chat/{answer_id}", last_event_id_of(request)))

    async def one_shot(self, request: Request) -> Response:
        message = request.path_params["message"]
        resume = _ONE_SHOT_ID.fullmatch(request.headers.get("last-event-id", ""))
        if resume is not None:
            answer_id, cursor = resume.group(1), resume.group(2)
            if not await self._settle(answer_id) or await self._is_over(answer_id, cursor):
                return Response(status_code=204)
        else:
            if len(message) > MAX_MESSAGE_CHARS:
                raise ApiError(413, "message_too_long", f"over {MAX_MESSAGE_CHARS} characters")
            admit_stream(self.hub, self.settings)  # start no answer that nobody can read
            answer, cursor = await self._start([ChatMessage("user", message)])
            answer_id = answer.id
        stream = await self._open(f"chat/{answer_id}", cursor)
        return EventSourceResponse(
            _relay(answer_id, stream),
            heartbeat_interval=self.settings.hub.heartbeat_interval,
        )

    # -- helpers -------------------------------------------------------------

    async def _start(self, messages: list[ChatMessage]) -> tuple[Answer, str]:
        try:
            return await self.book.start(messages)
        except TooManyAnswersError as exc:
            raise ApiError(
                429, "too_many_answers", f"{exc}; try again soon", {"Retry-After": "2"}
            ) from exc

    async def _settle(self, answer_id: str) -> bool:
        return await self.book.settle(answer_id)

    async def _is_over(self, answer_id: str, cursor: str) -> bool:
        """True when the answer has ended and nothing of it follows ``cursor``."""
        if answer_id in self.book.running:
            return False
        parsed = parse_cursor(cursor)
        if parsed is None or parsed.epoch != self.hub.epoch:
            return False
        result = await self.hub.read([f"chat/{answer_id}"], parsed.seq, 1)
        return not result.events

    async def _open(self, topic: str, last_event_id: str | None) -> Stream:
        """Open the answer's stream; like every stream route, refused at ``--max-connections``."""
        admit_stream(self.hub, self.settings)  # no await between this check and the register
        return await self.hub.open([topic], last_event_id)


async def _relay(answer_id: str, stream: Stream) -> AsyncIterator[ServerSentEvent]:
    """An answer topic's events with ``<answer_id>.<cursor>`` ids, ending after the last."""
    parser = EventStreamParser()
    retry: int | None = None
    try:
        chunks = stream.chunks()
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                for event in parser.feed(chunk):
                    if event.event == RESET_EVENT:
                        yield ServerSentEvent(
                            data=json.dumps(
                                {"message": "回答的历史已不可用（answer history is gone）"},
                                ensure_ascii=False,
                            ),
                            event="error",
                        )
                        return
                    yield ServerSentEvent(
                        data=event.data, event=event.event, id=f"{answer_id}.{event.id}"
                    )
                    if event.event in TERMINAL_EVENTS:
                        return
                if parser.retry is not None and parser.retry != retry:
                    retry = parser.retry
                    yield ServerSentEvent(retry=retry)
    finally:
        stream.end()


def _answer_id(request: Request) -> str:
    answer_id: str = request.path_params["answer_id"]
    if ANSWER_ID.fullmatch(answer_id) is None:
        raise ApiError(404, "unknown_answer", "answer ids are 16 hex digits")
    return answer_id


async def _read_messages(request: Request) -> list[ChatMessage]:
    """The conversation in a ``POST /chat/answers`` body, checked and bounded."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, "payload_too_large", f"body over {MAX_BODY} bytes")
    try:
        payload: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("message"), str):
        raise ApiError(400, "invalid_json", 'body must be like {"message": "你好"}')
    message: str = payload["message"]
    if not message.strip():
        raise ApiError(400, "empty_message", "the message is empty")
    if len(message) > MAX_MESSAGE_CHARS:
        raise ApiError(413, "message_too_long", f"over {MAX_MESSAGE_CHARS} characters")
    history = payload.get("history") or []
    if not isinstance(history, list):
        raise ApiError(400, "invalid_json", '"history" must be a list of {"role", "content"}')
    messages: list[ChatMessage] = []
    for item in history[-MAX_HISTORY_MESSAGES:]:
        if (
            not isinstance(item, dict)
            or item.get("role") not in ("user", "assistant")
            or not isinstance(item.get("content"), str)
        ):
            raise ApiError(400, "invalid_json", 'history items are {"role", "content"}')
        messages.append(ChatMessage(item["role"], item["content"][: MAX_MESSAGE_CHARS * 4]))
    messages.append(ChatMessage("user", message))
    return messages
