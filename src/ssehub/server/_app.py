"""The ASGI application: routes, lifespan, middleware.

``HubApp`` is both the ASGI app and the owner of the :class:`~ssehub.hub.Hub`.
Run it alone (``ssehub serve``), or mount it in your own Starlette/FastAPI app
and enter ``hub_app.lifespan()`` from your app's lifespan (Starlette does not
run a mounted app's lifespan by itself).

A ``HubApp`` serves the hub's API and nothing else: demos and other optional
parts are plug-ins (``plugins=[...]``, see ``_plugin``) that its owner opts into.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..errors import HubError
from ..hub import Hub, open_backend
from ._auth import AccessPolicy
from ._client_script import CLIENT_SCRIPT_PATH, client_script
from ._errors import (
    ApiError,
    api_error_response,
    error_response,
    exception_handlers,
    http_exception_response,
)
from ._metrics import MetricsEndpoint
from ._plugin import Plugin, plugin_admin_routes
from ._resumable import Producers
from ._settings import ServerSettings
from ._tokens import ADMIN_TOPIC
from ._topics_api import TopicsAPI

__all__ = ["HubApp", "create_app"]

logger = logging.getLogger("ssehub.server")

#: Methods whose requests on the stream routes skip Starlette's middleware frames.
_FAST_METHODS = frozenset(("GET", "POST"))


class HubApp:
    """An ssehub hub as an ASGI application.

    While its lifespan runs, SIGINT and SIGTERM first drain the hub (every stream
    gets a jittered ``retry:`` and ends), then reach whatever handler was there
    before — the ASGI server's.  Without that, a server such as uvicorn would wait
    for the open streams to end before running the lifespan's shutdown, which is
    where the hub would otherwise drain: a mounted hub would hang shutdown for as
    long as a client stays connected.  ``install_signal_handlers=False`` leaves
    signals alone (``ssehub serve`` drains from its own server hooks).
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        *,
        hub: Hub | None = None,
        plugins: Sequence[Plugin] = (),
        install_signal_handlers: bool = True,
    ) -> None:
        self.settings = settings or ServerSettings()
        self.hub = hub or Hub(
            open_backend(self.settings.store, self.settings.retention),
            self.settings.hub,
        )
        self.plugins = tuple(plugins)
        self._producers = Producers(self.hub)
        #: The access rules (tokens, grants, Host and Origin checks); plug-ins use it too.
        self.access = AccessPolicy(self.settings)
        self._install_signal_handlers = install_signal_handlers
        self._started = False
        self._fast_streams = not self.settings.cors_origins
        self.app = Starlette(
            routes=self._routes(),
            middleware=self._middleware(),
            exception_handlers=exception_handlers,
            lifespan=lambda _app: self.lifespan(),
        )

    async def resumable(
        self, request: Request, topic: str, produce: Callable[[], AsyncIterable[Any]]
    ) -> Response:
        """Serve ``topic`` from your own route, produced once by ``produce()``.

        The first request for ``topic`` (on any process sharing the store)
        runs ``produce`` in the background, publishing each item it yields
        into ``topic``; every request — that one, reconnects, late readers,
        on any process — is served the topic from its start, or after its own
        ``Last-Event-ID``.  See :mod:`ssehub.server._resumable`.
        """
        try:
            start = await self._producers.claim(topic, produce)
            return await self._api.stream(request, [topic], default_cursor=start)
        except HubError as exc:
            raise ApiError.of(exc) from exc

    async def subscribe(self, request: Request, *topics: str) -> Response:
        """Stream ``topics`` from your own endpoint, with resume, heartbeats, limits.

        The client's ``Last-Event-ID`` (or ``?last_event_id=``) is honoured
        exactly as on ``GET /topics/…``, and so are ``?since=earliest`` /
        ``?rewind=…`` for a late joiner and ``?tag=topic`` (each event names
        its topic in a ``topic:`` line); refusals raise :class:`ApiError`
        (a JSON error when the app uses ssehub's exception handlers), the
        hub's own translated by the one table of ``_errors``.
        """
        try:
            return await self._api.stream(request, list(topics))
        except HubError as exc:
            raise ApiError.of(exc) from exc

    def admin_routes(self) -> list[BaseRoute]:
        """The admin surface: ``/metrics``, the stats feed, the plug-ins' admin routes.

        Served beside the API, or with ``--admin-port`` by :class:`._admin.AdminApp`
        alone (``/metrics`` and the plug-ins' admin routes are then left out of
        the main app; the stats feed is refused there by the access policy).
        """
        metrics = self._metrics

        async def metrics_endpoint(request: Request) -> Response:
            await self.access.authorize_admin(request)
            return await metrics.endpoint(request)

        async def stats_feed(request: Request) -> Response:
            return await self._api.stream(request, [ADMIN_TOPIC])

        routes: list[BaseRoute] = [Route("/metrics", metrics_endpoint, methods=["GET"])]
        if self.settings.admin_port is not None:
            routes.append(Route(f"/topics/{ADMIN_TOPIC}", stats_feed, methods=["GET"]))
        return routes + plugin_admin_routes(self.plugins, self.hub, self.settings)

    def _routes(self) -> list[BaseRoute]:
        api = self._api = TopicsAPI(self.hub, self.settings, access=self.access)
        self._metrics = MetricsEndpoint(self.hub)
        plugin_routes = [
            route for plugin in self.plugins for route in plugin.routes(self.hub, self.settings)
        ]
        # The stream routes are also matched first by __call__ (see there).
        self._stream_routes = (
            Route("/events", api.subscribe_many, methods=["GET"]),
            # One route for both methods, so a 405 names both in ``Allow``.
            Route("/topics/{topic:path}", api.topic, methods=["GET", "POST"]),
            *(route for route in plugin_routes if isinstance(route, StreamRoute)),
        )
        admin = self.admin_routes() if self.settings.admin_port is None else []
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/livez", self.livez, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            *admin[:1],  # /metrics
            Route(CLIENT_SCRIPT_PATH, client_script, methods=["GET"]),
            *self._stream_routes,
            *plugin_routes,
            *admin[1:],
            Route("/", self.index, methods=["GET"]),
        ]

    async def index(self, request: Request) -> Response:
        """``GET /``: what this service is and where its API lives (relative links)."""
        return JSONResponse(
            {
                "service": "ssehub",
                "version": __version__,
                "links": {
                    "subscribe": "topics/{topic}",
                    "subscribe_many": "events?topic={topic}&topic={topic}",
                    "publish": "POST topics/{topic}",
                    "health": "healthz",
                    "liveness": "livez",
                    "readiness": "readyz",
                    "metrics": "metrics",
                    "browser_client": "ssehub.js",
                },
            }
        )

    def _middleware(self) -> list[Middleware]:
        """CORS by the ``--cors-origin`` allowlist.

        Credentialed reads (a cross-origin ``EventSource`` with
        ``withCredentials``, sending the token cookie) are allowed only when
        every listed origin is explicit: with ``*`` or ``null`` (any sandboxed
        frame) in the list, no origin gets ``Access-Control-Allow-Credentials``.
        """
        origins = list(self.settings.cors_origins)
        if not origins:
            return []
        explicit = not any(o.strip().lower() in ("*", "null") for o in origins)
        return [
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                # Credentials (the token cookie) only for an explicit allowlist: with '*'
                # Starlette would reflect any origin, so any site could read with the cookie.
                allow_credentials=explicit,
                allow_methods=["GET", "POST"],
                allow_headers=["Last-Event-ID", "Content-Type", "Authorization"],
                expose_headers=["Last-Event-ID", "Mercure-Last-Event-ID", "Link"],
                max_age=600,
            )
        ]

    async def healthz(self, request: Request) -> Response:
        try:
            async with asyncio.timeout(2.0):
                head = await self.hub.head()
        except (HubError, TimeoutError) as exc:
            return JSONResponse(
                {"status": "unavailable", "message": f"store unreachable: {exc}"}, status_code=503
            )
        live_feed = self.hub.feed_connected
        status = "draining" if self.hub.closing else "ok" if live_feed else "degraded"
        body: dict[str, Any] = {
            "status": status,
            "live_feed": live_feed,
            "open_streams": self.hub.open_streams,
            "head": head,
            "epoch": self.hub.epoch,
            "pid": os.getpid(),
        }
        workers = self._metrics.workers
        if workers is not None:  # many processes: this one above, all of them here
            body["workers"] = workers.workers()
        return JSONResponse(body)

    async def livez(self, request: Request) -> Response:
        """``GET /livez``: this process and its event loop answer.  Never touches the store.

        For an orchestrator's liveness probe: a store outage (a Redis blip) must
        not get every pod restarted, so only a process that can't run this
        handler fails it.
        """
        return JSONResponse({"status": "alive", "pid": os.getpid()})

    async def readyz(self, request: Request) -> Response:
        """``GET /readyz``: 200 when this process can serve — store and live feed usable.

        503 while the store does not answer within 2 s, while the live feed is
        disconnected (subscribers would miss events) and while draining.  For a
        readiness probe: traffic goes elsewhere until it is 200 again.
        """
        problem = ""
        if self.hub.closing:
            problem = "draining"
        else:
            try:
                async with asyncio.timeout(2.0):
                    await self.hub.head()
            except (HubError, TimeoutError) as exc:
                problem = f"store unreachable: {exc}"
            else:
                if not self.hub.feed_connected:
                    problem = "live feed disconnected"
        body = {"status": "not_ready" if problem else "ready", "pid": os.getpid()}
        if problem:
            body["message"] = problem
        return JSONResponse(body, status_code=503 if problem else 200)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Start the hub (and its plug-ins) for the duration of the block; drain on exit."""
        for note in self.access.startup_notes():
            logger.info("%s", note)
        await self.hub.start()
        restore = self._chain_signals() if self._install_signal_handlers else None
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._metrics.workers is not None:
                    await stack.enter_async_context(self._metrics.workers.running())
                for plugin in self.plugins:
                    await stack.enter_async_context(plugin.lifespan(self.hub, self.settings))
                yield
        finally:
            if restore is not None:
                restore()
            await self._producers.aclose()
            self.hub.drain()
            await self.hub.aclose()

    def _chain_signals(self) -> Callable[[], None]:
        """Drain the hub on SIGINT/SIGTERM, then call whatever handler was there."""
        loop = asyncio.get_running_loop()
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.hub.drain)
            old = previous.get(signum)
            if callable(old):
                old(signum, frame)

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread
                previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(sig, old)

        return restore

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request.

        Streams are held for hours, so the frames a request keeps alive are memory
        per open stream.  When no middleware is configured, a ``GET`` that one of
        the stream routes matches (Starlette's own matching) skips the app's error
        and exception middleware frames: its refusals are rendered here, as JSON.
        A publish (``POST`` on a topic) takes the same short way: it is the hot
        path of publishers, and those frames were a tenth of its cost.
        """
        if scope["type"] == "http" and not self.access.host_allowed(Request(scope).headers):
            refusal = error_response(
                400, "host_not_allowed", "this Host is not served here (see --allowed-host)"
            )
            await refusal(scope, receive, send)
            return
        if scope["type"] == "http" and self._fast_streams and scope["method"] in _FAST_METHODS:
            route = self._direct_route(scope)
            if route is not None:
                # The endpoint's frame (and its Request) is gone before the
                # response runs: only this frame waits while a stream lives.
                response = await self._answer_direct(route, Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _direct_route(self, scope: Scope) -> Route | None:
        """The stream route that fully matches ``scope`` (its path params added), if any."""
        for route in self._stream_routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                return route
        return None

    @staticmethod
    async def _answer_direct(route: Route, request: Request) -> Response:
        """``route``'s response to ``request``; its refusals rendered as JSON."""
        try:
            response: Response = await route.endpoint(request)
        except ApiError as exc:
            return api_error_response(exc)
        except HubError as exc:
            return api_error_response(ApiError.of(exc))
        except HTTPException as exc:
            return await http_exception_response(request, exc)
        return response


class StreamRoute(Route):
    """A plug-in's route whose ``GET`` opens a hub stream (``HubStreamResponse``).

    Its ``GET`` is served like the hub's own stream routes: matched first, and
    without the middleware frames when none is configured (see
    :meth:`HubApp.__call__`); its refusals (``ApiError``, ``HubError``) are
    rendered as JSON.  Other methods take the usual path.
    """


def create_app(
    settings: ServerSettings | None = None, *, plugins: Sequence[Plugin] = (), **overrides: Any
) -> HubApp:
    """Build a :class:`HubApp`; keyword overrides replace fields of ``settings``."""
    import dataclasses

    base = settings or ServerSettings()
    return HubApp(dataclasses.replace(base, **overrides) if overrides else base, plugins=plugins)
