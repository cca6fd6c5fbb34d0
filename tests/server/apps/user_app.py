"""A user's own FastAPI app with ssehub mounted and ssehub's response in its endpoints.

Served by uvicorn in a subprocess by tests/server/test_framework_glue.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from starlette.responses import Response

from ssehub.hub import HubConfig
from ssehub.protocol import ServerSentEvent
from ssehub.server import EventSourceResponse, HubApp, ServerSettings

hub_app = HubApp(ServerSettings(store="memory", hub=HubConfig(heartbeat_interval=0.2)))
finished: list[str] = []


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with hub_app.lifespan():
        yield


app = FastAPI(lifespan=lifespan)
app.mount("/hub", hub_app)


@app.get("/rooms/{room}")
async def room_stream(room: str, request: Request) -> Response:
    """Your own route and rules, the hub's resumable stream."""
    if room == "secret":
        raise HTTPException(403, "not your room")
    return await hub_app.subscribe(request, f"rooms/{room}")


@app.post("/rooms/{room}/say")
async def say(room: str, request: Request) -> dict[str, str]:
    published = await hub_app.hub.publish(f"rooms/{room}", (await request.body()).decode())
    return {"id": published.id}


@app.get("/count")
async def count(request: Request) -> Response:
    """Numbered tokens from a plain generator; resumes after the client's last id."""

    async def tokens(last_event_id: str | None) -> AsyncIterator[ServerSentEvent]:
        start = int(last_event_id) + 1 if last_event_id and last_event_id.isdigit() else 0
        try:
            for i in range(start, start + 1_000_000):
                yield ServerSentEvent(data=f"token {i}", id=str(i))
                if i >= start + 2:
                    await asyncio.sleep(3600)  # then go quiet: heartbeats keep it alive
        finally:
            finished.append(f"count from {start}")

    return EventSourceResponse(tokens, request=request, heartbeat_interval=0.2)


@app.get("/finished")
async def finished_generators() -> list[str]:
    return finished
