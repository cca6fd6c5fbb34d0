"""The sse-starlette peer: Starlette on uvicorn, ``EventSourceResponse``, a queue per subscriber.

Written the way sse-starlette's README shows it: an async generator yields
``ServerSentEvent`` objects into an ``EventSourceResponse``; the publish route puts one
event on every subscriber's ``asyncio.Queue``.  uvicorn runs with its defaults (uvloop and
httptools when installed, as they are here), access log off.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator

import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from benchmarks.peers import PublishedEvent, parse_publish

RETRY_MS = 3000

_subscribers: defaultdict[str, set[asyncio.Queue[PublishedEvent]]] = defaultdict(set)
_ids = itertools.count(1)


async def subscribe(request: Request) -> Response:
    topic: str = request.path_params["topic"]
    queue: asyncio.Queue[PublishedEvent] = asyncio.Queue()

    async def stream() -> AsyncIterator[ServerSentEvent]:
        _subscribers[topic].add(queue)
        try:
            yield ServerSentEvent(retry=RETRY_MS)
            while True:
                item = await queue.get()
                yield ServerSentEvent(data=item.data, event=item.event, id=item.id)
        finally:
            _subscribers[topic].discard(queue)

    return EventSourceResponse(stream())


async def publish(request: Request) -> Response:
    topic: str = request.path_params["topic"]
    try:
        data, event = parse_publish(
            await request.body(),
            request.headers.get("content-type", ""),
            request.query_params.get("event"),
        )
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    item = PublishedEvent(id=str(next(_ids)), data=data, event=event)
    for queue in _subscribers[topic]:
        queue.put_nowait(item)
    return JSONResponse({"id": item.id, "topic": topic}, status_code=201)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/topics/{topic:path}", subscribe, methods=["GET"]),
        Route("/topics/{topic:path}", publish, methods=["POST"]),
    ]
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8005)
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
