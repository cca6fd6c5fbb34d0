"""The README's recipes run as written: Django, Flask, Celery, a resumable endpoint, MCP.

Each test takes its snippet from README.md (``tests.support.readme.claimed``),
points ``http://localhost:8004`` at a real ``ssehub serve`` and runs it with the
framework's own test tools; the app recipes run under real uvicorn processes.
Issue 16.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import HubProcess, start_hub
from tests.support.readme import claimed
from tests.support.servers import start_uvicorn
from tests.support.sse import open_stream


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One ``ssehub serve`` (memory store) for the module; every recipe has its own topic."""
    with start_hub(
        ["--store", "memory", "--no-ticker"], log_dir=tmp_path_factory.mktemp("hub")
    ) as hub:
        yield hub


def run_recipe(marker: str, hub: HubProcess) -> dict[str, Any]:
    """Execute the README snippet holding ``marker`` against ``hub``; return its globals."""
    source = claimed(marker).replace("http://localhost:8004", hub.url)
    namespace: dict[str, Any] = {"__name__": f"readme_{marker}"}
    exec(compile(source, f"README-{marker}", "exec"), namespace)
    return namespace


def history(hub: HubProcess, topic: str, event_id: str) -> list[tuple[str, str]]:
    """(event, data) of every event stored on ``topic`` up to ``event_id``."""
    epoch = event_id.rsplit("-", 1)[0]
    with open_stream(f"{hub.url}/topics/{topic}?last_event_id={epoch}-0") as stream:
        stream.read_until(f"id: {event_id}\n".encode())
    return [(event.event, event.data) for event in stream.events]


def test_the_django_recipe_publishes_from_a_view(hub: HubProcess) -> None:
    import django
    from django.conf import settings
    from django.test import RequestFactory

    if not settings.configured:
        settings.configure(DEBUG=False, ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=[])
        django.setup()
    recipe = run_recipe("from django", hub)
    answer = recipe["mark_paid"](RequestFactory().post("/orders/7/paid"), order_id=7)
    assert answer.status_code == 200
    event_id = httpx.Response(200, content=answer.content).json()["event"]
    assert history(hub, "orders/7", event_id) == [("order", '{"status": "paid"}')]


def test_the_flask_recipe_publishes_from_a_route(hub: HubProcess) -> None:
    recipe = run_recipe("Flask(__name__)", hub)
    answer = recipe["app"].test_client().post("/orders/8/ship")
    assert answer.status_code == 200
    assert history(hub, "orders/8", answer.json["event"]) == [("order", "shipped")]


def test_the_celery_recipe_publishes_once_when_a_task_runs_twice(hub: HubProcess) -> None:
    recipe = run_recipe("Celery(", hub)
    recipe["celery"].conf.task_always_eager = True
    task = recipe["report_progress"]
    first = task.delay("j9", 1, 2).get()
    again = task.delay("j9", 1, 2).get()  # the same step, run again
    last = task.delay("j9", 2, 2).get()
    assert first == again
    assert history(hub, "jobs/j9", last) == [
        ("progress", '{"done": 1, "total": 2}'),
        ("progress", '{"done": 2, "total": 2}'),
    ]


WORDS = ["You", "asked", "about", "life,", "here", "is", "the", "answer."]


def test_the_resumable_recipe_resumes_on_another_process_with_no_loss(tmp_path: Path) -> None:
    """Two uvicorn processes on one SQLite file: part of an answer on one, the rest on the other."""
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "readme_resumable.py").write_text(claimed("hub_app.resumable("))
    app = "readme_resumable:app"
    with (
        start_uvicorn(app, log_path=tmp_path / "a.log", cwd=folder) as first,
        start_uvicorn(app, log_path=tmp_path / "b.log", cwd=folder) as second,
    ):
        with open_stream(f"{first.url}/answers/life") as stream:
            seen = stream.read_events(3)[:3]
        assert [e.data for e in seen] == WORDS[:3]
        with open_stream(
            f"{second.url}/answers/life", headers={"Last-Event-ID": seen[-1].id}
        ) as stream:
            stream.read_until(b"event: done")
            rest = stream.events
        # A late reader, fresh, on either process: the whole answer from one run.
        with open_stream(f"{first.url}/answers/life") as stream:
            stream.read_until(b"event: done")
            late = [e.data for e in stream.events if e.event == "token"]
        assert late == WORDS
    tokens = [e.data for e in [*seen, *rest] if e.event == "token"]
    assert tokens == WORDS
    assert [e.event for e in rest][-1] == "done"


async def test_the_mcp_recipe_serves_a_tool_with_progress(tmp_path: Path) -> None:
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp_types import TextContent

    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "readme_mcp.py").write_text(claimed("HubSessionManager("))
    steps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(progress)

    with start_uvicorn("readme_mcp:app", log_path=tmp_path / "mcp.log", cwd=folder) as server:
        async with (
            streamable_http_client(f"{server.url}/mcp") as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool(
                "build_report", {"pages": 3}, progress_callback=on_progress
            )
    assert steps == [1, 2, 3]
    [content] = result.content
    assert isinstance(content, TextContent)
    assert content.text == "3 pages"
    assert (folder / "mcp.db").exists()
