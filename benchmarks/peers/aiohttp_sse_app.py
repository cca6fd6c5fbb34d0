"""The aiohttp-sse peer: aiohttp's web server, ``sse_response``, a queue per subscriber.

Written the way aiohttp-sse's README shows it (``async with sse_response(request) as
resp: ... await resp.send(data)``); the publish route puts one event on every
subscriber's ``asyncio.Queue``.  ``web.run_app`` runs with its defaults except two, so
the three servers are compared on equal terms: the event loop is uvloop (what uvicorn
picks for the other two; ``--loop asyncio`` for the stock loop) and the listen backlog
is uvicorn's 2048 instead of aiohttp's 128.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections import defaultdict

from aiohttp import web
from aiohttp_sse import sse_response

from benchmarks.peers import PublishedEvent, parse_publish

RETRY_MS = 3000

Subscribers = defaultdict[str, set[asyncio.Queue[PublishedEvent]]]
subscribers_key = web.AppKey("subscribers", Subscribers)
_ids = itertools.count(1)


async def subscribe(request: web.Request) -> web.StreamResponse:
    topic = request.match_info["topic"]
    subscribers = request.app[subscribers_key][topic]
    queue: asyncio.Queue[PublishedEvent] = asyncio.Queue()
    async with sse_response(request) as resp:
        subscribers.add(queue)
        try:
            # aiohttp-sse's send() always writes a data line; a retry-only block
            # (what the other servers send first) goes through the response's write().
            await resp.write(f"retry: {RETRY_MS}\r\n\r\n".encode())
            while resp.is_connected():
                item = await queue.get()
                await resp.send(item.data, id=item.id, event=item.event)
        finally:
            subscribers.discard(queue)
    return resp


async def publish(request: web.Request) -> web.Response:
    topic = request.match_info["topic"]
    try:
        data, event = parse_publish(
            await request.read(), request.content_type, request.query.get("event")
        )
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    item = PublishedEvent(id=str(next(_ids)), data=data, event=event)
    for queue in request.app[subscribers_key][topic]:
        queue.put_nowait(item)
    return web.json_response({"id": item.id, "topic": topic}, status=201)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app() -> web.Application:
    app = web.Application()
    subscribers: Subscribers = defaultdict(set)
    app[subscribers_key] = subscribers
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/topics/{topic:.+}", subscribe)
    app.router.add_post("/topics/{topic:.+}", publish)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8006)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args(argv)
    loop: asyncio.AbstractEventLoop
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(make_app(), host=args.host, port=args.port, backlog=2048, print=None, loop=loop)


if __name__ == "__main__":
    main()
