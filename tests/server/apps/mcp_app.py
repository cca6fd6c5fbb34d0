"""An MCP server (the ``mcp`` SDK's ``MCPServer``) whose streams live in a ``HubEventStore``.

Served by uvicorn in subprocesses by tests/integrations/test_mcp_resume.py: two
of them on one store (``SSEHUB_TEST_MCP_STORE``) are two replicas of one service.

The ``count`` tool reports progress ``1..n``; before step ``hold_at`` it waits
until the file ``gate`` exists, so a test can cut the client's connection at a
known point of the response (the wait is the tool's, not the test's).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Route

from ssehub.integrations.mcp import HubEventStore, HubSessionManager

server = MCPServer("ssehub-test")


@server.tool()
async def count(n: int, hold_at: int, gate: str, ctx: Context) -> str:
    """Report progress 1..n, holding before step ``hold_at`` until ``gate`` exists."""
    for step in range(1, n + 1):
        if step == hold_at:
            # The gate is a file the test process creates: polled, as nothing else crosses.
            while not os.path.exists(gate):  # noqa: ASYNC110, ASYNC240
                await asyncio.sleep(0.01)
        await ctx.report_progress(step, n, f"step {step}")
    return f"counted to {n} on pid {os.getpid()}"


class NamedTokens:
    """A bearer-token verifier for tests: the token ``alice`` is client ``alice``, and so on."""

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token.isalnum():
            return None
        return AccessToken(token=token, client_id=token, scopes=[], subject=f"user-{token}")


def build_app(store_url: str, *, authenticate: bool = False) -> Starlette:
    """The server on a new ``HubEventStore(store_url)``, as a Starlette app.

    ``authenticate``: the SDK's own bearer authentication (``BearerAuthBackend``)
    in front, with :class:`NamedTokens`; a request without a token is anonymous.
    """
    store = HubEventStore(store_url)
    manager = HubSessionManager(server, store, retry_interval=50)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            try:
                yield
            finally:
                await store.aclose()

    middleware = (
        [Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(NamedTokens()))]
        if authenticate
        else []
    )
    return Starlette(
        routes=[Route("/mcp", StreamableHTTPASGIApp(manager))],
        middleware=middleware,
        lifespan=lifespan,
    )


app = build_app(os.environ.get("SSEHUB_TEST_MCP_STORE", "memory"))
