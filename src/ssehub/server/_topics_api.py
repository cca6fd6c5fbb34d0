"""The topic API: ``POST /topics/{topic}`` publishes, ``GET`` streams.

Publish body conventions (DESIGN.md): a JSON object ``{"data": …, "event": "…"}``
(``Content-Type: application/json``; a non-string ``data`` is sent as its JSON
text) or any other body as plain UTF-8 text, the event type then coming from
``?event=``.  Answer: ``201 {"id": "…", "topic": "…"}``.

JSON bodies are parsed strictly: ``NaN``/``Infinity``, numbers that overflow
to infinity, integers of more than 4300 digits and nesting past Python's
recursion limit are refused with ``400 invalid_json``, so a non-string
``data`` is always re-emitted as valid JSON.

Private events: ``"private": true`` in a JSON body, or ``?private=1``, makes
the event private: it reaches only streams whose token grants ``subscribe``
on its topic (``_auth``).  Publishing itself is authorized first (``_auth``),
before the body is read.

Refused streams: a ``GET`` that is turned away for a passing reason (too many
connections, draining, store unavailable) is answered ``503`` with a JSON body
— unless the client accepts ``text/event-stream`` but not JSON (a browser's
``EventSource`` sends exactly ``Accept: text/event-stream``).  A browser gives
up for good on any non-200 answer, so such a client gets ``200`` with a stream
that carries only a comment naming the problem and a jittered ``retry:``, then
ends: the browser comes back later by itself.

Late joiners: a stream without a cursor may start in the retained history
— ``?since=earliest`` (all of it), ``?rewind=N`` (the last N events) or
``?rewind=30s`` (``ms``/``s``/``m``/``h``) — then continues live; a
``Last-Event-ID`` (header or ``?last_event_id=``) wins over both.  Anything
else is ``400 invalid_rewind`` (``hub/_rewind.py``).

Tagged streams: ``?tag=topic`` on a ``GET`` puts one ``topic: <name>`` line
before each event's other lines, naming the topic it was published to (a
stream of several topics, e.g. a browser's shared one, can then tell them
apart; a WHATWG parser ignores the unknown field).  Control blocks (the
opening ``retry``, heartbeats, ``ssehub-reset``) are never tagged.  Any other
value is ``400 invalid_query``.

Idempotency: an ``Idempotency-Key`` request header (1 to 128 visible ASCII
characters) makes a retry safe for 24 h: a repeat of the same publish stores
nothing and gets the first answer again (``201``, same body) with the header
``Idempotent-Replayed: true``; the key with another topic, data or event type
is ``409 idempotency_conflict``; a malformed key ``400 invalid_idempotency_key``.
A ``503`` whose store timed out says the outcome is unknown: retry with the
same key.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..hub import Hub, parse_rewind
from ._admission import admit_stream
from ._auth import AccessPolicy
from ._body import read_body
from ._come_back import stream_or_come_back
from ._errors import ApiError
from ._settings import ServerSettings
from ._stream import SSE_HEADERS, HubStreamResponse, last_event_id_of

__all__ = ["TopicsAPI"]

_JSON_KEYS = frozenset({"data", "event", "private"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
#: Most topics one ``GET /events`` stream may name.
MAX_TOPICS_PER_STREAM = 100


class TopicsAPI:
    """Endpoints bound to one hub and its settings."""

    def __init__(
        self,
        hub: Hub,
        settings: ServerSettings,
        *,
        access: AccessPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.hub = hub
        self.settings = settings
        self.access = access or AccessPolicy(settings)
        self._rng = rng or random.Random()

    async def publish(self, request: Request) -> Response:
        topic = request.path_params["topic"]
        await self.access.authorize_publish(request, [topic])
        private = _flag(request.query_params.get("private"))
        body = await read_body(request, self.settings.max_body_size)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json" or content_type.endswith("+json"):
            data, event, private_field = _parse_json_body(body)
            private = private or private_field
        else:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(400, "invalid_body", f"body is not valid UTF-8: {exc}") from exc
            event = request.query_params.get("event")
        key = request.headers.get("idempotency-key")
        published = await self.hub.publish(topic, data, event, idempotency_key=key, private=private)
        headers = {"Idempotent-Replayed": "true"} if published.replayed else None
        return JSONResponse(
            {"id": published.id, "topic": published.topic}, status_code=201, headers=headers
        )

    async def topic(self, request: Request) -> Response:
        """``/topics/{topic}``: ``POST`` publishes, ``GET`` streams."""
        if request.method == "POST":
            return await self.publish(request)
        return await self.subscribe_one(request)

    async def subscribe_one(self, request: Request) -> Response:
        return await self.stream(request, [request.path_params["topic"]])

    async def subscribe_many(self, request: Request) -> Response:
        topics = request.query_params.getlist("topic")
        if not topics:
            raise ApiError(400, "missing_topic", "name at least one topic: /events?topic=a&topic=b")
        if len(topics) > MAX_TOPICS_PER_STREAM:
            raise ApiError(
                400, "too_many_topics", f"at most {MAX_TOPICS_PER_STREAM} topics per stream"
            )
        return await self.stream(request, topics)

    async def stream(
        self, request: Request, topics: list[str], *, default_cursor: str | None = None
    ) -> Response:
        """Open a resumable stream of ``topics`` for ``request``.

        The hub's refusals are answered by the table in ``_errors``; a passing
        one (503) becomes a come-back-later stream for a browser.  ``HEAD``
        (which Starlette routes with ``GET``) gets the stream's headers and
        opens nothing.  ``default_cursor`` is where a request without a
        ``Last-Event-ID`` of its own starts.
        """
        if request.method == "HEAD":
            return Response(headers={k.decode(): v.decode() for k, v in SSE_HEADERS})
        return await stream_or_come_back(
            request, lambda: self._stream(request, topics, default_cursor), self._rng
        )

    async def _stream(
        self, request: Request, topics: list[str], default_cursor: str | None = None
    ) -> Response:
        admit_stream(self.hub, self.settings)  # 503 too_many_connections at the limit
        query = request.query_params
        rewind = parse_rewind(query.get("since"), query.get("rewind"))  # 400 invalid_rewind
        tagged = _tagged(query.getlist("tag"))  # 400 invalid_query
        subscriber = await self.access.subscriber(request, topics)
        stream = await self.hub.open(
            topics,
            last_event_id_of(request) or default_cursor,
            grant=subscriber.grant,
            expires_at=subscriber.expires_at,
            rewind=rewind,
            tagged=tagged,
        )
        return HubStreamResponse(stream)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]}… is out of range")
    return value


def _flag(value: str | None) -> bool:
    """``?private=1``: a boolean query parameter (absent is false)."""
    if value is None:
        return False
    lowered = value.lower()
    if lowered in _TRUE or lowered == "":
        return True
    if lowered in _FALSE:
        return False
    raise ApiError(400, "invalid_query", "private must be 1/true or 0/false")


def _tagged(values: list[str]) -> bool:
    """``?tag=topic``: whether the stream names each event's topic (absent is false)."""
    if any(value != "topic" for value in values):
        raise ApiError(
            400, "invalid_query", "tag must be 'topic' (?tag=topic names each event's topic)"
        )
    return bool(values)


def _parse_json_body(body: bytes) -> tuple[str, str | None, bool]:
    try:
        payload: Any = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise ApiError(400, "invalid_json", "body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", 'body must be a JSON object like {"data": "…"}')
    unknown = sorted(set(payload) - _JSON_KEYS)
    if unknown:
        raise ApiError(
            400,
            "invalid_json",
            f"unknown field(s) {', '.join(unknown)}; allowed: data, event, private",
        )
    if "data" not in payload:
        raise ApiError(400, "invalid_json", 'body needs a "data" field')
    data = payload["data"]
    if not isinstance(data, str):
        try:
            data = json.dumps(data, ensure_ascii=False, allow_nan=False)
        except RecursionError as exc:  # pragma: no cover - loads refuses deeper bodies first
            raise ApiError(400, "invalid_json", "data is nested too deeply") from exc
    event = payload.get("event")
    if event is not None and not isinstance(event, str):
        raise ApiError(422, "invalid_event", '"event" must be a string')
    private = payload.get("private", False)
    if not isinstance(private, bool):
        raise ApiError(400, "invalid_json", '"private" must be true or false')
    return data, event, private
