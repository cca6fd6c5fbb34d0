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
  does.
* **The same owner everywhere.**  The SDK serves a session only to the
  credential that opened it (``AuthorizationContext``: client id, issuer,
  subject; none when the app has no authentication).  Its process keeps that
  in memory, so before the opening request is answered (before the session id
  leaves the process) the manager claims the session in the store for a
  SHA-256 of that context (:meth:`HubEventStore.claim`), and a resume on
  another process is served only when the requester's context hashes to the
  claim: another user's credential, none, or a session with no claim held
  gets ``404 Session not found``, as the owning process would answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from mcp.server.auth.middleware.bearer_auth import (
    AuthenticatedUser,
    AuthorizationContext,
    authorization_context,
)
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

from ...errors import BackendUnavailableError
from ...server import EventSourceResponse
from ._store import HubEventStore

__all__ = ["HubSessionManager"]

logger = logging.getLogger("ssehub.integrations.mcp")

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

    async def _serve_opening_request(
        self,
        http_transport: StreamableHTTPServerTransport,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        session_id = http_transport.mcp_session_id
        view = http_transport._event_store
        if session_id is not None and isinstance(view, HubEventStore):
            owner = owner_of(self._session_owners.get(session_id))
            try:
                await view.claim(owner)
            except BackendUnavailableError as exc:  # the session works here, not elsewhere
                logger.warning("MCP session %s not claimed in the store: %s", session_id, exc)
        await super()._serve_opening_request(http_transport, scope, receive, send)

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
        user = request.scope.get("user")
        requestor = authorization_context(user) if isinstance(user, AuthenticatedUser) else None
        if await view.owner() != owner_of(requestor):
            logger.warning(
                "refusing to resume MCP session %.64s: the credential is not its owner's",
                session_id,
            )
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


def owner_of(requestor: AuthorizationContext | None) -> str:
    """The claim of a session opened by ``requestor``: ``sha256:`` of its three parts.

    ``requestor`` is the SDK's ``AuthorizationContext`` of the opening request
    (``None`` when the app authenticates nobody: the claim ``anonymous``).
    """
    if requestor is None:
        return "anonymous"
    parts = [requestor["client_id"], requestor["issuer"], requestor["subject"]]
    return "sha256:" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _not_found() -> JSONResponse:
    """The SDK's answer to an unknown session (a JSON-RPC error, no request id)."""
    return JSONResponse(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Session not found"}},
        status_code=404,
    )
