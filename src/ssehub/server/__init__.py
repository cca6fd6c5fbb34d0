"""The ASGI side of ssehub: the hub app, streaming responses, settings, runner.

Built on Starlette, served by uvicorn.  Mount :class:`HubApp` in your own app,
stream your own generator with :class:`EventSourceResponse`, or serve a hub
until SIGTERM with :func:`run` (what ``ssehub serve`` does).
"""

from __future__ import annotations

from ._admission import admit_stream, counted_stream
from ._app import HubApp, create_app
from ._errors import ApiError
from ._plugin import Plugin
from ._run import check_store, run
from ._settings import ServerSettings, Settings, option
from ._stream import SSE_HEADERS, EventSourceResponse, HubStreamResponse, last_event_id_of

__all__ = [
    "SSE_HEADERS",
    "ApiError",
    "EventSourceResponse",
    "HubApp",
    "HubStreamResponse",
    "Plugin",
    "ServerSettings",
    "Settings",
    "admit_stream",
    "check_store",
    "counted_stream",
    "create_app",
    "last_event_id_of",
    "option",
    "run",
]
