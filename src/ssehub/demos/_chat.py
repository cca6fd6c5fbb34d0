"""The chat demo's HTTP side.

The hub's refusals (a store outage, a draining hub) propagate as
:class:`~ssehub.errors.HubError` and are answered by the server's one error
table, as on every route.

Routes (answers live in hub topics ``chat/<answer_id>``, see ``_answers``).
An answer belongs to the browser session that started it (``_sessions``: an
``HttpOnly; SameSite=Strict`` cookie set by the first ``POST`` or one-shot
``GET``); for any other client every route below answers ``404
unknown_answer``, as for an answer that does not exist.

* ``GET /chat`` — the chat page.
* ``GET /chat/answers`` — ``{"responder", "running", "max_running", "max_running_per_client"}``.
* ``POST /chat/answers`` ``{"message": "…", "history": [{"role", "content"}…]}`` →
  ``201 {"answer_id", "topic", "events", "stream", "last_event_id"}``: open
  ``EventSource(events + "?last_event_id=" + last_event_id)`` to read the whole
  answer, and resume later from any event's ``lastEventId``.  ``429
  too_many_answers`` when this client (session or address) already has
  ``--chat-max-running-per-client`` answers running, or the hub ``--chat-max-running``.
* ``GET /chat/answers/{id}`` — ``{"answer_id", "topic", "state"}``; ``state``
  is ``running``, ``done``, ``stopped`` or ``failed``, read from the store
  (any node, and after a restart).
* ``POST /chat/answers/{id}/stop`` — stop a running answer wherever it runs (it
  ends with ``done`` ``{"reason": "stopped"}``): ``202 {"state"}``.
* ``GET /chat/answers/{id}/events`` — the answer topic as a hub stream, with resume.
* ``GET /chat/answers/{id}/stream`` — the AI SDK's resume contract: ``204``
  when the answer is not running, else the whole answer from its start, then
  live, as a UI message stream (``x-vercel-ai-ui-message-stream: v1``, see
  ``_ui_chunks``).
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

from ..hub import EARLIEST, RESET_EVENT, Hub, Rewind, Selector, Stream, TopicGrant, parse_cursor
from ..protocol import EventStreamParser, ServerSentEvent
from ..server import (
    ApiError,
    EventSourceResponse,
    GuardedResponse,
    HubStreamResponse,
    ServerSettings,
    UIMessageStreamResponse,
    admit_stream,
    last_event_id_of,
    read_body,
    stream_events,
)
from ._answers import ANSWER_ID, TERMINAL_EVENTS, Answer, AnswerBook, RunInfo, TooManyAnswersError
from ._lifecycle import CONTROL_EVENTS
from ._responders import ChatMessage
from ._sessions import Session, client_address, session_of
from ._ui_chunks import ui_chunks

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
            Route("/chat/answers/{answer_id}/stream", self.stream, methods=["GET"]),
            Route("/chat/{message:path}", self.one_shot, methods=["GET"]),
        ]

    async def info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "responder": self.book.responder.name,
                "running": len(self.book.running),
                "max_running": self.book.max_running,
                "max_running_per_client": self.book.max_running_per_client,
            }
        )

    async def create(self, request: Request) -> Response:
        messages = await _read_messages(request)
        session = _session(request)
        answer, cursor = await self._start(messages, session, request)
        response = JSONResponse(
            {
                "answer_id": answer.id,
                "topic": answer.topic,
                "events": f"chat/answers/{answer.id}/events",
                "stream": f"chat/answers/{answer.id}/stream",
                "last_event_id": cursor,
            },
            status_code=201,
        )
        session.set_cookie(response, request)
        return response

    async def status(self, request: Request) -> Response:
        answer_id = _answer_id(request)
        info = await self._owned(request, answer_id)
        return JSONResponse(
            {"answer_id": answer_id, "topic": f"chat/{answer_id}", "state": info.state}
        )

    async def stop(self, request: Request) -> Response:
        answer_id = _answer_id(request)
        info = await self._owned(request, answer_id)
        state = info.state
        if state == "running":
            state = await self.book.request_stop(answer_id)
        return JSONResponse({"answer_id": answer_id, "state": state}, status_code=202)

    async def events(self, request: Request) -> Response:
        answer_id = _answer_id(request)
        admit_stream(self.hub, self.settings)  # refuse early, before any read
        await self._owned(request, answer_id)
        return HubStreamResponse(await self._open(answer_id, last_event_id_of(request)))

    async def stream(self, request: Request) -> Response:
        """The AI SDK's ``resume``: ``204`` unless running, else the answer from its start."""
        answer_id = _answer_id(request)
        admit_stream(self.hub, self.settings)
        info = await self._owned(request, answer_id)
        if info.state != "running":
            return Response(status_code=204)
        stream = await self._open(answer_id, None, rewind=EARLIEST)
        ui = UIMessageStreamResponse(
            ui_chunks(answer_id, stream_events(stream)),
            heartbeat_interval=self.settings.hub.heartbeat_interval,
        )
        return GuardedResponse(self.hub, ui)  # a reader that stops is cut at the deadline

    async def one_shot(self, request: Request) -> Response:
        message = request.path_params["message"]
        resume = _ONE_SHOT_ID.fullmatch(request.headers.get("last-event-id", ""))
        session = _session(request)
        if resume is not None:
            answer_id, cursor = resume.group(1), resume.group(2)
            info = await self._owned(request, answer_id)
            if info.state != "running" and await self._is_over(answer_id, cursor):
                return Response(status_code=204)
        else:
            if len(message) > MAX_MESSAGE_CHARS:
                raise ApiError(413, "message_too_long", f"over {MAX_MESSAGE_CHARS} characters")
            admit_stream(self.hub, self.settings)  # start no answer that nobody can read
            answer, cursor = await self._start([ChatMessage("user", message)], session, request)
            answer_id = answer.id
        stream = await self._open(answer_id, cursor)
        relay = EventSourceResponse(
            _relay(answer_id, stream),
            heartbeat_interval=self.settings.hub.heartbeat_interval,
            headers=session.cookie_headers(request),
        )
        return GuardedResponse(self.hub, relay)  # a reader that stops is cut at the deadline

    # -- helpers -------------------------------------------------------------

    async def _start(
        self, messages: list[ChatMessage], session: Session, request: Request
    ) -> tuple[Answer, str]:
        try:
            return await self.book.start(
                messages, owner=session.owner, client=client_address(request)
            )
        except TooManyAnswersError as exc:
            raise ApiError(
                429, "too_many_answers", f"{exc}; try again soon", {"Retry-After": "2"}
            ) from exc

    async def _owned(self, request: Request, answer_id: str) -> RunInfo:
        """The answer's lifecycle, if this request's session owns it; else ``404``."""
        session = session_of(request)
        info = await self.book.info(answer_id) if session is not None else None
        if info is None or session is None or not session.owns(info.owner):
            raise ApiError(404, "unknown_answer", f"no answer {answer_id} for this browser")
        return info

    async def _is_over(self, answer_id: str, cursor: str) -> bool:
        """True when nothing of the (ended) answer but control events follows ``cursor``."""
        parsed = parse_cursor(cursor)
        if parsed is None or parsed.epoch != self.hub.epoch:
            return False
        result = await self.hub.read([f"chat/{answer_id}"], parsed.seq, 16)
        return all(e.event in CONTROL_EVENTS for e in result.events) and not result.more

    async def _open(
        self, answer_id: str, last_event_id: str | None, *, rewind: Rewind | None = None
    ) -> Stream:
        """Open the answer's stream; like every stream route, refused at ``--max-connections``.

        The answer's events are private: the stream carries a grant of its topic.
        """
        topic = f"chat/{answer_id}"
        grant = TopicGrant.of([Selector.exact(topic)])
        admit_stream(self.hub, self.settings)  # no await between this check and the register
        return await self.hub.open([topic], last_event_id, grant=grant, rewind=rewind)


async def _relay(answer_id: str, stream: Stream) -> AsyncIterator[ServerSentEvent]:
    """An answer topic's events with ``<answer_id>.<cursor>`` ids, ending after the last."""
    parser = EventStreamParser()
    retry: int | None = None
    try:
        chunks = stream.chunks()
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                for event in parser.feed(chunk):
                    if event.event in CONTROL_EVENTS:
                        continue  # another node's stop or reader note: not the answer's
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


def _session(request: Request) -> Session:
    session = session_of(request, create=True)
    assert session is not None
    return session


def _answer_id(request: Request) -> str:
    answer_id: str = request.path_params["answer_id"]
    if ANSWER_ID.fullmatch(answer_id) is None:
        raise ApiError(404, "unknown_answer", "answer ids are 16 hex digits")
    return answer_id


async def _read_messages(request: Request) -> list[ChatMessage]:
    """The conversation in a ``POST /chat/answers`` body, checked and bounded."""
    body = await read_body(request, MAX_BODY)
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
