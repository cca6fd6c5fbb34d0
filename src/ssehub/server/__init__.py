"""The ASGI side of ssehub: the hub app, streaming responses, settings, runner.

Built on Starlette, served by uvicorn.  Mount :class:`HubApp` in your own app,
stream your own generator with :class:`EventSourceResponse`, or serve a hub
until SIGTERM with :func:`run` (what ``ssehub serve`` does).
"""

from __future__ import annotations

from ._admission import admit_stream, counted_stream
from ._app import HubApp, StreamRoute, create_app
from ._auth import AccessPolicy, Subscriber, is_loopback
from ._body import read_body
from ._come_back import stream_or_come_back
from ._errors import ApiError, error_response
from ._guarded import GuardedResponse
from ._plugin import Plugin
from ._run import check_store, run
from ._settings import ServerSettings, Settings, option
from ._stream import SSE_HEADERS, EventSourceResponse, HubStreamResponse, last_event_id_of
from ._tls import TlsError, check_tls, dev_certificate
from ._tokens import ADMIN_TOPIC, MERCURE_DETAIL_TYPE, Claims, TokenVerifier, mint_token
from ._ui_messages import (
    TERMINAL_CHUNKS,
    UI_MESSAGE_STREAM_HEADERS,
    RunLog,
    UIMessageStreamResponse,
    stream_events,
)
from ._workers import check_workers

__all__ = [
    "ADMIN_TOPIC",
    "MERCURE_DETAIL_TYPE",
    "SSE_HEADERS",
    "TERMINAL_CHUNKS",
    "UI_MESSAGE_STREAM_HEADERS",
    "AccessPolicy",
    "ApiError",
    "Claims",
    "EventSourceResponse",
    "GuardedResponse",
    "HubApp",
    "HubStreamResponse",
    "Plugin",
    "RunLog",
    "ServerSettings",
    "Settings",
    "StreamRoute",
    "Subscriber",
    "TlsError",
    "TokenVerifier",
    "UIMessageStreamResponse",
    "admit_stream",
    "check_store",
    "check_tls",
    "check_workers",
    "counted_stream",
    "create_app",
    "dev_certificate",
    "error_response",
    "is_loopback",
    "last_event_id_of",
    "mint_token",
    "option",
    "read_body",
    "run",
    "stream_events",
    "stream_or_come_back",
]
