"""``HubSessionManager``: the SDK's session manager, with a session scope and resume anywhere.

Two things the SDK's ``StreamableHTTPSessionManager`` can't do with a shared
store, added here (against the pinned ``mcp`` version's seams):

* **One scope per session.**  Each transport gets
  ``store.for_session(session_id)``, so a ``Last-Event-ID`` replays only the
  streams of the session that presents it (the SDK's stream ids — request ids,
  ``_GET_stream`` — repeat across sessions).
* **Resume on any process.**  A session lives in the process that created it;
  another process answers its requests ``404``.  Except one: a ``GET`` with
  ``Last-Event-ID`` for a session this process doesn't hold is served from the
  store — the stored messages after the id, then those the owning process
  stores while the client listens, until the request's response (a request
  stream) or until the client leaves (the ``_GET_stream``).  An id that is not
  this session's stream answers ``404 Session not found``, as an unknown session
  does.  The session id (random, 128 bits, only in the client's hands) and an
  event id of that session are what such a resume needs; a deployment with
  per-user credentials should check them in front of this route, since the
  owner of a session is known only to the process that created it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http import (
    GET_STREAM_KEY,
    LAST_EVENT_ID_HEADER,
    MCP_SESSION_ID_HEADER,
    StreamableHTTPServerTransport,
)
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp_types import JSONRPCError, JSONRPCResponse
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from ...server import EventSourceResponse
from ._store import HubEventStore

__all__ = ["HubSessionManager"]

#: What a session id may look like here: the SDK's visible ASCII, bounded.
_SESSION_ID = re.compile(r"[\x21-\x7e]{1,128}")


class HubSessionManager(StreamableHTTPSessionManager):
    """A ``StreamableHTTPSessionManager`` on a :class:`HubEventStore`; see the module docstring.

    ``app`` is the MCP server (an ``MCPServer``, or a low-level ``Server``);
    ``kwargs`` are the SDK manager's (``retry_interval``, ``security_settings``,
    ``session_idle_timeout``...).  Mount it with the
    SDK's ``StreamableHTTPASGIApp(manager)`` and run ``manager.run()`` in the
    app's lifespan.
    """

    def __init__(self, app: Server[Any] | MCPServer, store: HubEventStore, **kwargs: Any) -> None:
        if isinstance(app, MCPServer):
            app = app._lowlevel_server
        if kwargs.get("stateless"):
            raise ValueError("stateless MCP servers store no events: HubSessionManager is stateful")
        super().__init__(app, event_store=store, **kwargs)
        self.store = store

    def _admit_session(self, requestor: Any) -> StreamableHTTPServerTransport | None:
        transport = super()._admit_session(requestor)
        if transport is not None and transport.mcp_session_id is not None:
            transport._event_store = self.store.for_session(transport.mcp_session_id)
        return transport

    async def _handle_stateful_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        session_id = request.headers.get(MCP_SESSION_ID_HEADER)
        last_event_id = request.headers.get(LAST_EVENT_ID_HEADER)
        if (
            request.method == "GET"
            and session_id is not None
            and last_event_id
            and session_id not in self._server_instances
        ):
            await self._resume_elsewhere(request, session_id, last_event_id, send)
            return
        await super()._handle_stateful_request(scope, receive, send)

    async def _resume_elsewhere(
        self, request: Request, session_id: str, last_event_id: str, send: Send
    ) -> None:
        """Serve a resume for a session another process holds, from the store."""
        refused = await TransportSecurityMiddleware(self.security_settings).validate_request(
            request, is_post=False
        )
        if refused is not None:
            await refused(request.scope, request.receive, send)
            return
        view = self.store.for_session(session_id) if _SESSION_ID.fullmatch(session_id) else None
        stream_id = await view.locate(last_event_id) if view is not None else None
        if view is None or stream_id is None:
            await _not_found()(request.scope, request.receive, send)
            return

        async def events() -> AsyncIterator[Mapping[str, Any]]:
            async for stored in view.messages(last_event_id):
                message = stored.message
                assert message is not None
                yield {
                    "event": "message",
                    "id": stored.event_id,
                    "data": message.model_dump_json(by_alias=True, exclude_unset=True),
                }
                if (
                    stream_id != GET_STREAM_KEY
                    and isinstance(message, JSONRPCResponse | JSONRPCError)
                    and str(message.id) == stream_id
                ):
                    return

        response = EventSourceResponse(
            events(),
            retry=self.retry_interval,
            headers={MCP_SESSION_ID_HEADER: session_id},
            prelude=False,
        )
        await response(request.scope, request.receive, send)


def _not_found() -> JSONResponse:
    """The SDK's answer to an unknown session (a JSON-RPC error, no request id)."""
    return JSONResponse(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Session not found"}},
        status_code=404,
    )
