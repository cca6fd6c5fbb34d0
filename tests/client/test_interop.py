"""The client reads other servers' event streams: FastAPI's ``fastapi.sse`` and sse-starlette.

Each app runs under uvicorn in a thread on a free loopback port.  The
endpoints end their stream after two events, so the client must reconnect
with ``Last-Event-ID`` to get the rest: the servers' own resume reading proves
the header arrives.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.sse import EventSourceResponse as FastAPIEventSourceResponse
from fastapi.sse import ServerSentEvent as FastAPIServerSentEvent
from sse_starlette.sse import EventSourceResponse as StarletteEventSourceResponse
from starlette.applications import Starlette
from starlette.routing import Route

from ssehub.client import AsyncEventSource, EventSource
from ssehub.protocol import Event
from tests.support.client import Recorder, take
from tests.support.servers import serve_in_thread as serve


def resume_point(request: Request) -> int:
    return int(request.headers.get("last-event-id") or 0)


def fastapi_app(seen: list[str | None]) -> FastAPI:
    app = FastAPI()

    @app.get("/stream", response_class=FastAPIEventSourceResponse)
    async def stream(request: Request) -> AsyncIterator[FastAPIServerSentEvent]:
        seen.append(request.headers.get("last-event-id"))
        start = resume_point(request)
        if start == 0:
            yield FastAPIServerSentEvent(comment="hello", retry=1500)
        for n in range(start + 1, min(start + 2, 5) + 1):
            yield FastAPIServerSentEvent(data={"n": n, "text": "你好"}, event="tick", id=str(n))
        if start >= 4:
            yield FastAPIServerSentEvent(raw_data="line one\nline two", event="done", id="done")

    return app


def starlette_app(seen: list[str | None], sep: str) -> Starlette:
    async def stream(request: Request) -> StarletteEventSourceResponse:
        seen.append(request.headers.get("last-event-id"))
        start = resume_point(request)

        async def events() -> AsyncIterator[dict[str, Any]]:
            for n in range(start + 1, min(start + 2, 5) + 1):
                yield {
                    "event": "tick",
                    "id": str(n),
                    "data": f"tick {n}\nsecond line",
                    "retry": 700,
                }

        return StarletteEventSourceResponse(events(), ping=0.05, sep=sep)

    return Starlette(routes=[Route("/stream", stream)])


def test_reads_and_resumes_a_fastapi_native_sse_endpoint() -> None:
    seen: list[str | None] = []
    recorder = Recorder()
    with (
        serve(fastapi_app(seen)) as url,
        EventSource(f"{url}/stream", **recorder.options()) as source,
    ):
        events = take(source, 6)
    assert [(e.event, e.id) for e in events[:5]] == [("tick", str(n)) for n in range(1, 6)]
    assert json.loads(events[0].data) == {"n": 1, "text": "你好"}
    assert events[5] == Event(data="line one\nline two", event="done", id="done", retry=1500)
    assert seen == [None, "2", "4"]
    assert recorder.sleeps == [1.5, 1.5]


@pytest.mark.parametrize("sep", ["\r\n", "\n", "\r"])
def test_reads_and_resumes_an_sse_starlette_endpoint(sep: str) -> None:
    seen: list[str | None] = []
    recorder = Recorder()
    with (
        serve(starlette_app(seen, sep)) as url,
        EventSource(f"{url}/stream", **recorder.options()) as source,
    ):
        events = take(source, 5)
    assert [(e.event, e.id, e.data) for e in events] == [
        ("tick", str(n), f"tick {n}\nsecond line") for n in range(1, 6)
    ]
    assert seen == [None, "2", "4"]
    assert recorder.sleeps == [0.7, 0.7]


async def test_async_client_reads_a_fastapi_native_sse_endpoint() -> None:
    seen: list[str | None] = []
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    with serve(fastapi_app(seen)) as url:
        async with AsyncEventSource(f"{url}/stream", sleep=sleep) as source:
            events = []
            async for item in source:
                events.append(item)
                if item.event == "done":
                    break
    assert [e.id for e in events] == ["1", "2", "3", "4", "5", "done"]
    assert seen == [None, "2", "4"]
