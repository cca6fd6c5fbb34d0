"""The topic API: ``POST /topics/{topic}`` publishes, ``GET`` streams.

Publish body conventions (DESIGN.md): a JSON object ``{"data": …, "event": "…"}``
(``Content-Type: application/json``; a non-string ``data`` is sent as its JSON
text) or any other body as plain UTF-8 text, the event type then coming from
``?event=``.  Answer: ``201 {"id": "…", "topic": "…"}``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..hub import Hub
from ._admission import admit_stream
from ._errors import ApiError
from ._settings import ServerSettings
from ._stream import HubStreamResponse, last_event_id_of

__all__ = ["TopicsAPI"]

_JSON_KEYS = frozenset({"data", "event"})
#: Most topics one ``GET /events`` stream may name.
MAX_TOPICS_PER_STREAM = 100


class TopicsAPI:
    """Endpoints bound to one hub and its settings."""

    def __init__(self, hub: Hub, settings: ServerSettings) -> None:
        self.hub = hub
        self.settings = settings

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_size
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "payload_too_large", f"body over the limit of {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, "payload_too_large", f"body over the limit of {limit} bytes")
        return bytes(body)

    async def publish(self, request: Request) -> Response:
        topic = request.path_params["topic"]
        body = await self._read_body(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json" or content_type.endswith("+json"):
            data, event = _parse_json_body(body)
        else:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(400, "invalid_body", f"body is not valid UTF-8: {exc}") from exc
            event = request.query_params.get("event")
        published = await self.hub.publish(topic, data, event)  # HubError: see _errors
        return JSONResponse({"id": published.id, "topic": published.topic}, status_code=201)

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

    async def stream(self, request: Request, topics: list[str]) -> Response:
        """Open a resumable stream of ``topics`` for ``request``.

        The hub's refusals propagate as :class:`~ssehub.errors.HubError`
        (answered by the table in ``_errors``).
        """
        admit_stream(self.hub, self.settings)  # 503 too_many_connections at the limit
        stream = await self.hub.open(topics, last_event_id_of(request))
        return HubStreamResponse(stream)


def _parse_json_body(body: bytes) -> tuple[str, str | None]:
    try:
        payload: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", 'body must be a JSON object like {"data": "…"}')
    unknown = sorted(set(payload) - _JSON_KEYS)
    if unknown:
        raise ApiError(
            400, "invalid_json", f"unknown field(s) {', '.join(unknown)}; allowed: data, event"
        )
    if "data" not in payload:
        raise ApiError(400, "invalid_json", 'body needs a "data" field')
    data = payload["data"]
    if not isinstance(data, str):
        data = json.dumps(data, ensure_ascii=False)
    event = payload.get("event")
    if event is not None and not isinstance(event, str):
        raise ApiError(422, "invalid_event", '"event" must be a string')
    return data, event
