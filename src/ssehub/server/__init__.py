"""The ASGI side of ssehub: the hub app, streaming responses, settings, runner.

Built on Starlette, served by uvicorn.  Mount :class:`HubApp` in your own app,
or stream your own generator with :class:`EventSourceResponse`.
"""

from __future__ import annotations

from ._app import HubApp, create_app
from ._errors import ApiError
from ._plugin import Plugin
from ._settings import Settings
from ._stream import SSE_HEADERS, EventSourceResponse, HubStreamResponse, last_event_id_of

__all__ = [
    "SSE_HEADERS",
    "ApiError",
    "EventSourceResponse",
    "HubApp",
    "HubStreamResponse",
    "Plugin",
    "Settings",
    "create_app",
    "last_event_id_of",
]
