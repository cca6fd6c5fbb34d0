"""JSON error answers, and the one table from ssehub's errors to HTTP.

Body convention: ``{"error": "<code>", "message": "<what is wrong>"}`` with a
short machine-readable ``code`` (``not_found``, ``payload_too_large``,
``invalid_json``, ``invalid_event``, …) and a sentence for people.

Errors are translated once, as httpx's ``map_exceptions`` does: a route lets a
:class:`~ssehub.errors.HubError` propagate and :data:`ERROR_ANSWERS` (looked up
along the exception's MRO, most specific class first) decides its status,
code, headers and message prefix, through the Starlette exception handlers in
:data:`exception_handlers` — so a bad topic is the same ``400`` and a store
outage the same ``503`` on every route (the topic API, the demos, yours).
Refusals that are not hub errors (a body too large, bad JSON) raise
:class:`ApiError` with their answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import (
    AccessError,
    BackendUnavailableError,
    HubClosingError,
    HubError,
    IdempotencyConflictError,
    InsufficientScopeError,
    InvalidEventError,
    InvalidIdempotencyKeyError,
    InvalidRewindError,
    InvalidTokenError,
    InvalidTopicError,
    MissingTokenError,
    OversizedEventError,
    QuotaExceededError,
    StoreTimeoutError,
    TokenInQueryError,
)

__all__ = [
    "ERROR_ANSWERS",
    "ApiError",
    "ErrorAnswer",
    "answer_for",
    "api_error_response",
    "error_response",
    "exception_handlers",
    "http_exception_response",
]


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """How one class of error is answered over HTTP.

    The message is ``prefix + str(exc)``.
    """

    status: int
    code: str
    headers: Mapping[str, str] = field(default_factory=dict)
    prefix: str = ""


#: ssehub's errors → HTTP, written once.  ``HubError`` is the catch-all for the
#: hub's other refusals (e.g. a subscription naming no topic).
ERROR_ANSWERS: Mapping[type[Exception], ErrorAnswer] = {
    InvalidTopicError: ErrorAnswer(400, "invalid_topic"),
    InvalidEventError: ErrorAnswer(422, "invalid_event"),
    OversizedEventError: ErrorAnswer(413, "event_too_large"),
    InvalidIdempotencyKeyError: ErrorAnswer(
        400, "invalid_idempotency_key", {}, "Idempotency-Key: "
    ),
    IdempotencyConflictError: ErrorAnswer(409, "idempotency_conflict"),
    InvalidRewindError: ErrorAnswer(400, "invalid_rewind"),
    StoreTimeoutError: ErrorAnswer(
        503,
        "store_unavailable",
        {"Retry-After": "1"},
        "the store did not answer in time: the event may or may not be stored; retry with "
        "the same Idempotency-Key header to publish it exactly once: ",
    ),
    HubClosingError: ErrorAnswer(503, "shutting_down", {"Retry-After": "2"}),
    BackendUnavailableError: ErrorAnswer(
        503, "store_unavailable", {"Retry-After": "1"}, "nothing done, the store is unavailable: "
    ),
    # Access control (RFC 6750 §3: no error code when no credentials were sent).
    MissingTokenError: ErrorAnswer(401, "token_required", {"WWW-Authenticate": "Bearer"}),
    InvalidTokenError: ErrorAnswer(
        401, "invalid_token", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    ),
    TokenInQueryError: ErrorAnswer(
        400, "token_in_query", {"WWW-Authenticate": 'Bearer error="invalid_request"'}
    ),
    InsufficientScopeError: ErrorAnswer(
        403, "insufficient_scope", {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
    ),
    AccessError: ErrorAnswer(403, "forbidden"),
    QuotaExceededError: ErrorAnswer(507, "quota_exceeded"),
    HubError: ErrorAnswer(400, "bad_request"),
}


class ApiError(Exception):
    """Raised by an endpoint to answer with a JSON error."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers) if headers else None

    @classmethod
    def of(cls, exc: HubError) -> ApiError:
        """The answer :data:`ERROR_ANSWERS` gives ``exc``, as an :class:`ApiError`."""
        answer = answer_for(exc)
        return cls(answer.status, answer.code, answer.prefix + str(exc), answer.headers)


def answer_for(exc: HubError) -> ErrorAnswer:
    """The entry of :data:`ERROR_ANSWERS` for ``exc``'s most specific class."""
    for cls in type(exc).__mro__:
        answer = ERROR_ANSWERS.get(cls)
        if answer is not None:
            return answer
    raise LookupError(f"no HTTP answer for {type(exc).__name__}")  # pragma: no cover


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message},
        status_code=status,
        headers=dict(headers) if headers else None,
    )


def api_error_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


async def _hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    return api_error_response(ApiError.of(exc))


async def http_exception_response(request: Request, exc: Exception) -> Response:
    """Starlette's ``HTTPException`` (404, 405, …) as a JSON error."""
    assert isinstance(exc, HTTPException)
    status = HTTPStatus(exc.status_code)
    code = status.phrase.lower().replace(" ", "_").replace("-", "_")
    message = exc.detail if exc.detail != status.phrase else status.description
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, code, str(message), dict(exc.headers or {}))


exception_handlers = {
    ApiError: _api_error,
    HubError: _hub_error,
    HTTPException: http_exception_response,
}
