"""The seed's demos as a hub plug-in: test page, chat, ticker, log tail, dashboard.

Depends on :mod:`ssehub.server`, never the reverse.  ``HubApp(settings,
plugins=[DemosPlugin()])`` (what ``ssehub serve`` does unless ``--no-demos``)
adds the demo routes (``GET /`` the seed's stream and landing page, the pages,
``/static/``) and, for the app's lifespan, the background publishers (ticker,
log tailers, dashboard feed) and the chat answers.

Pages (``ssehub/web``): ``/test.html``, ``/chat``, ``/ticker``, ``/logs``,
``/dashboard``.  Streams besides the hub's own: ``GET /`` (the seed's demo),
``/chat/{message}``, ``/chat/answers/{id}/events`` and ``/stream``, ``/ticker/events`` — each
counted against ``--max-connections`` through ``ssehub.server.admit_stream``.
Topics: ``chat/<answer_id>``, ``ticker/<SYMBOL>``, ``logs/<n>``, ``ssehub/stats``.
Every knob is a field of :class:`DemoSettings`.

The dashboard (its page and ``/dashboard/recent``) is part of the admin
surface (``admin_routes``): with ``--admin-port`` it is served there and not
on the main port, and its stats feed is always published private.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..hub import Hub
from ..server import AccessPolicy, ServerSettings, is_loopback
from ._answers import AnswerBook
from ._chat import ChatAPI
from ._dashboard import StatsFeed
from ._logtail import LogTail
from ._pages import PAGES, page_routes
from ._responders import OpenAIResponder, Responder, SimulatedResponder
from ._root import DemoRoot
from ._settings import DemoSettings
from ._ticker import Ticker
from ._ticker_stream import TickerStream

__all__ = ["DemoSettings", "Demos", "DemosPlugin", "demos_by_default"]


def demos_by_default(host: str) -> bool:
    """Whether ``ssehub serve --host HOST`` runs the demos when not told.

    Only on a loopback interface (``127.0.0.1``, ``::1``, ``localhost``): a hub
    reachable from other machines serves its API and nothing it was not asked for.
    """
    return is_loopback(host)


def _responder(settings: DemoSettings) -> Responder:
    if settings.llm_url:
        return OpenAIResponder(
            settings.llm_url,
            settings.llm_model,
            api_key=os.environ.get("OPENAI_API_KEY") or None,
            connect_timeout=settings.llm_connect_timeout,
            read_timeout=settings.llm_read_timeout,
        )
    return SimulatedResponder(
        token_delay=settings.chat_token_delay, think_delay=settings.chat_think_delay
    )


class Demos:
    """Every demo service of one hub."""

    def __init__(self, hub: Hub, server: ServerSettings, settings: DemoSettings) -> None:
        self.hub = hub
        self.server = server
        self.settings = settings
        self.answers = AnswerBook(
            hub,
            _responder(settings),
            max_seconds=settings.chat_max_seconds,
            max_running=settings.chat_max_running,
            max_running_per_client=settings.chat_max_running_per_client,
            reader_grace=settings.chat_reader_grace,
        )
        self.ticker = Ticker(
            hub, interval=settings.ticker_interval, enabled=settings.ticker_runs(server.store)
        )
        self.logs = LogTail(
            hub,
            settings.tail_files,
            interval=settings.tail_interval,
            tail_lines=settings.tail_lines,
        )
        self.ticker_stream = TickerStream(hub, server)
        access = AccessPolicy(server)
        # The stats feed names topics: with a key (or beyond loopback, or with an admin
        # port) it is private, read by admin tokens or on the admin port only (its topic
        # is the admin topic, see server._tokens).
        self.stats = StatsFeed(
            hub,
            interval=settings.stats_interval,
            private=access.verifier is not None
            or not access.loopback
            or server.admin_port is not None,
            authorize=access.authorize_admin,
        )
        self._observing = False

    def routes(self) -> list[BaseRoute]:
        """The demo routes, the dashboard aside (see :meth:`admin_routes`)."""
        return [
            Route("/", DemoRoot(self.hub, self.server, self.settings).endpoint, methods=["GET"]),
            _static(),
            *page_routes(frozenset(PAGES) - {_DASHBOARD}),
            *ChatAPI(self.hub, self.server, self.answers).routes(),
            *self.ticker.routes(),
            Route("/ticker/events", self.ticker_stream.endpoint, methods=["GET"]),
            *self.logs.routes(),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        """The dashboard: its page and samples (with ``--admin-port``, its static files too)."""
        static = [_static()] if self.server.admin_port is not None else []
        return [*static, *page_routes(frozenset({_DASHBOARD})), *self.stats.routes()]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the publishers while the block runs; cancel them and the answers after."""
        if not self._observing:
            self._observing = True
            self.hub.add_observer(self.stats.observe)
            self.hub.add_observer(self.ticker_stream.observe)
            self.hub.add_observer(self.answers.observe)
        jobs = [self.stats.run(), self.answers.run()]
        if self.ticker.enabled:
            jobs.append(self.ticker.run())
        if self.logs.paths:
            jobs.append(self.logs.run())
        tasks = [asyncio.create_task(job, name="ssehub-demo") for job in jobs]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.answers.aclose()


_DASHBOARD = "/dashboard"


def _static() -> Mount:
    return Mount("/static", StaticFiles(packages=[("ssehub", "web")]), name="static")


class DemosPlugin:
    """The demos as a :class:`~ssehub.server.Plugin` of one hub app."""

    def __init__(self, settings: DemoSettings | None = None) -> None:
        self.settings = settings or DemoSettings()
        self._demos: weakref.WeakKeyDictionary[Hub, Demos] = weakref.WeakKeyDictionary()

    def __reduce__(self) -> tuple[type[DemosPlugin], tuple[DemoSettings]]:
        """Pickled as its settings alone (``--workers`` spawns each worker's plug-in anew)."""
        return (DemosPlugin, (self.settings,))

    def demos(self, hub: Hub, server: ServerSettings) -> Demos:
        """The one :class:`Demos` of ``hub`` (built on first use)."""
        demos = self._demos.get(hub)
        if demos is None:
            demos = self._demos[hub] = Demos(hub, server, self.settings)
        return demos

    def routes(self, hub: Hub, settings: ServerSettings) -> list[BaseRoute]:
        return self.demos(hub, settings).routes()

    def admin_routes(self, hub: Hub, settings: ServerSettings) -> list[BaseRoute]:
        return self.demos(hub, settings).admin_routes()

    @asynccontextmanager
    async def lifespan(self, hub: Hub, settings: ServerSettings) -> AsyncIterator[None]:
        async with self.demos(hub, settings).running():
            yield
