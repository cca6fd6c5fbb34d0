"""Optional parts are opted into: a bare ``HubApp`` serves its API and nothing else.

Issue 10 (https://github.com/…/issues/10): a FastAPI user mounting the hub got the
demo routes and five fake prices a second written into their own store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ssehub import __version__
from ssehub.demos import DemosPlugin, demos_by_default
from ssehub.hub import Hub
from ssehub.server import HubApp, Settings

DEMO_PATHS = ("/chat", "/ticker", "/logs", "/dashboard", "/test.html", "/static/ssehub.css")


def _paths(app: HubApp) -> set[str]:
    return {getattr(route, "path", "") for route in app.app.routes}


async def _settle() -> None:
    """Let every task that the lifespan started run its first steps."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_bare_hub_app_has_no_demo_routes_and_writes_nothing_to_its_store() -> None:
    app = HubApp(Settings(store="memory"))
    assert not {"/chat", "/ticker", "/logs", "/dashboard", "/static"} & _paths(app)
    before = {task.get_name() for task in asyncio.all_tasks()}
    async with app.lifespan():
        await _settle()
        app.hub.tick(time.monotonic())
        started = {task.get_name() for task in asyncio.all_tasks()} - before
        assert started == {"ssehub-hub-ticker"}
        assert await app.hub.head() == 0
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            for path in DEMO_PATHS:
                assert (await client.get(path)).status_code == 404, path


async def test_bare_hub_app_answers_root_with_a_json_index() -> None:
    app = HubApp(Settings(store="memory"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        response = await client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    body = response.json()
    assert body["service"] == "ssehub"
    assert body["version"] == __version__
    assert body["links"]["subscribe"] == "topics/{topic}"


async def test_demos_plugin_adds_the_demo_routes_and_its_publishers() -> None:
    app = HubApp(Settings(store="memory"), plugins=[DemosPlugin()])
    assert {"/chat", "/ticker", "/logs", "/dashboard", "/static"} <= _paths(app)
    async with app.lifespan():
        deadline = time.monotonic() + 10.0
        while await app.hub.head() == 0:  # the ticker publishes at once
            assert time.monotonic() < deadline, "the demo ticker published nothing"
            await asyncio.sleep(0.01)


class _Greeter:
    """The smallest plug-in: one route, a lifespan that records its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def routes(self, hub: Hub, settings: Settings) -> list[BaseRoute]:
        async def hello(request: Request) -> Response:
            return PlainTextResponse("hello")

        return [Route("/hello", hello), Route("/topics/{topic:path}", hello, methods=["POST"])]

    @asynccontextmanager
    async def lifespan(self, hub: Hub, settings: Settings) -> AsyncIterator[None]:
        self.calls.append("enter")
        yield
        self.calls.append("exit")


async def test_a_plugin_gets_routes_and_a_lifespan_but_never_shadows_the_api() -> None:
    plugin = _Greeter()
    app = HubApp(Settings(store="memory"), plugins=[plugin])
    async with app.lifespan():
        assert plugin.calls == ["enter"]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            assert (await client.get("/hello")).text == "hello"
            published = await client.post("/topics/news", content="x")
            assert published.status_code == 201
    assert plugin.calls == ["enter", "exit"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_serve_runs_demos_by_default_only_on_a_loopback_host(host: str, expected: bool) -> None:
    assert demos_by_default(host) is expected
