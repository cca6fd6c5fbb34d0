"""The topic API: ``POST /topics/{topic}`` publishes, ``GET`` streams.

Publish body conventions (DESIGN.md): a JSON object ``{"data": …, "event": "…"}``
(``Content-Type: application/json``; a non-string ``data`` is sent as its JSON
text) or any other body as plain UTF-8 text, the event type then coming from
``?event=``.  Answer: ``201 {"id": "…", "topic": "…"}``.

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
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import (
    BackendUnavailableError,
    EncodeError,
    HubError,
    IdempotencyConflictError,
    InvalidIdempotencyKeyError,
    InvalidTopicError,
    StoreTimeoutError,
)
from ..hub import Hub, HubClosingError
from ._errors import ApiError
from ._settings import Settings
from ._stream import HubStreamResponse, last_event_id_of

__all__ = ["TopicsAPI"]

_JSON_KEYS = frozenset({"data", "event"})
#: Most topics one ``GET /events`` stream may name.
MAX_TOPICS_PER_STREAM = 100


class TopicsAPI:
    """Endpoints bound to one hub and its settings."""

    def __init__(self, hub: Hub, settings: Settings) -> None:
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
        key = request.headers.get("idempotency-key")
        try:
            published = await self.hub.publish(topic, data, event, idempotency_key=key)
        except InvalidTopicError as exc:
            raise ApiError(400, "invalid_topic", str(exc)) from exc
        except InvalidIdempotencyKeyError as exc:
            raise ApiError(400, "invalid_idempotency_key", f"Idempotency-Key: {exc}") from exc
        except EncodeError as exc:
            raise ApiError(422, "invalid_event", str(exc)) from exc
        except IdempotencyConflictError as exc:
            raise ApiError(409, "idempotency_conflict", str(exc)) from exc
        except StoreTimeoutError as exc:
            raise ApiError(
                503,
                "store_unavailable",
                "the store did not answer in time: the event may or may not be stored; "
                "retry with the same Idempotency-Key header to publish it exactly once "
                f"({exc})",
                {"Retry-After": "1"},
            ) from exc
        except BackendUnavailableError as exc:
            raise ApiError(
                503, "store_unavailable", f"event not stored: {exc}", {"Retry-After": "1"}
            ) from exc
        headers = {"Idempotent-Replayed": "true"} if published.replayed else None
        return JSONResponse(
            {"id": published.id, "topic": published.topic}, status_code=201, headers=headers
        )

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
        """Open a resumable stream of ``topics`` for ``request``."""
        if self.hub.open_streams >= self.settings.max_connections:
            raise ApiError(
                503,
                "too_many_connections",
                f"the hub holds its limit of {self.settings.max_connections} streams",
                {"Retry-After": "5"},
            )
        try:
            stream = await self.hub.open(topics, last_event_id_of(request))
        except InvalidTopicError as exc:
            raise ApiError(400, "invalid_topic", str(exc)) from exc
        except HubClosingError as exc:
            raise ApiError(503, "shutting_down", str(exc), {"Retry-After": "2"}) from exc
        except BackendUnavailableError as exc:
            raise ApiError(503, "store_unavailable", str(exc), {"Retry-After": "1"}) from exc
        except HubError as exc:
            raise ApiError(400, "bad_subscription", str(exc)) from exc
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
