"""MCP event stores: messages stored and replayed per second.

``python -m benchmarks.bench_mcp [--sessions N] [--events N] [--repeat N]``

Stores, in one process and one run:

* **dict (SDK example shape)**: the ``mcp`` SDK ships its ``InMemoryEventStore``
  only in its repository's examples (``examples/servers/simple-streamablehttp``),
  not in the wheel, so it is not importable here.  Beside ours runs a minimal
  in-memory store of the same shape (a list per stream, a dict from event id to
  position; nothing durable, nothing shared, no session scope): the floor any
  store pays nothing under.
* **HubEventStore** on ``memory``, ``sqlite:`` (a fresh file) and ``redis://``
  (a private ``redis-server``, skipped when it is not installed).

Workload: ``--sessions`` MCP sessions at once (asyncio tasks), each storing
``--events`` progress notifications on its own request stream after a priming
event, one ``await store_event`` after another as the SDK's message router
does.  **store/s** counts messages stored by all sessions per second; then each
session replays its stream from its priming id (``replay_events_after``), and
**replay/s** counts messages sent per second.  Best of ``--repeat`` runs, a new
store each run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage, JSONRPCNotification
from rich.console import Console
from rich.table import Table

from benchmarks._servers import redis_server
from ssehub.integrations.mcp import HubEventStore

Make = Callable[[], contextlib.AbstractAsyncContextManager[EventStore]]


class DictEventStore(EventStore):
    """In memory, the shape of the SDK example: a list per stream, an index by event id."""

    def __init__(self) -> None:
        self._streams: dict[StreamId, list[tuple[EventId, JSONRPCMessage | None]]] = {}
        self._index: dict[EventId, tuple[StreamId, int]] = {}
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = str(next(self._ids))
        events = self._streams.setdefault(stream_id, [])
        self._index[event_id] = (stream_id, len(events))
        events.append((event_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        if last_event_id not in self._index:
            return None
        stream_id, position = self._index[last_event_id]
        for event_id, message in self._streams[stream_id][position + 1 :]:
            if message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


def _progress(n: int) -> JSONRPCNotification:
    params = {"progressToken": 1, "progress": n, "total": 100, "message": f"step {n}"}
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params=params)


async def _session(store: EventStore, events: int) -> EventId:
    priming = await store.store_event("1", None)
    for n in range(events):
        await store.store_event("1", _progress(n))
    return priming


async def _measure(
    make: Make,
    sessions: int,
    events: int,
) -> tuple[float, float]:
    async with make() as store:
        views: list[EventStore]
        if isinstance(store, HubEventStore):
            await store.start()
            views = [store.for_session(f"session-{i}") for i in range(sessions)]
        else:  # no scopes: give each session its own stream ids
            views = [_Renamed(store, f"s{i}") for i in range(sessions)]
        started = time.perf_counter()
        primings = await asyncio.gather(*(_session(view, events) for view in views))
        stored = sessions * events / (time.perf_counter() - started)
        sent = 0

        async def count(message: EventMessage) -> None:
            nonlocal sent
            sent += 1

        started = time.perf_counter()
        await asyncio.gather(
            *(view.replay_events_after(p, count) for view, p in zip(views, primings, strict=True))
        )
        replayed = sent / (time.perf_counter() - started)
        if sent != sessions * events:
            raise SystemExit(f"replay sent {sent} of {sessions * events} messages")
        return stored, replayed


class _Renamed(EventStore):
    """The dict store with stream ids made unique per session (it has no scopes)."""

    def __init__(self, store: EventStore, prefix: str) -> None:
        self.store, self.prefix = store, prefix

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        return await self.store.store_event(f"{self.prefix}/{stream_id}", message)

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        return await self.store.replay_events_after(last_event_id, send_callback)


@contextlib.asynccontextmanager
async def _dict() -> AsyncIterator[EventStore]:
    yield DictEventStore()


def _hub(url: str) -> Make:
    @contextlib.asynccontextmanager
    async def make() -> AsyncIterator[EventStore]:
        store = HubEventStore(url)
        try:
            yield store
        finally:
            await store.aclose()

    return make


@contextlib.contextmanager
def _stores(folder: Path) -> Iterator[list[tuple[str, Make]]]:
    runs = itertools.count()

    def sqlite() -> contextlib.AbstractAsyncContextManager[EventStore]:
        return _hub(f"sqlite:{folder / f'mcp-{next(runs)}.db'}")()  # a fresh file each run

    stores: list[tuple[str, Make]] = [
        ("dict (SDK example shape)", _dict),
        ("HubEventStore memory", _hub("memory")),
        ("HubEventStore sqlite", sqlite),
    ]
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(redis_server(folder))
        except RuntimeError as exc:
            print(f"redis: skipped ({exc})")
        else:
            # Runs share the server: each replays from its own priming ids, so only its events.
            stores.append(("HubEventStore redis", _hub(server.url)))
        yield stores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    table = Table(
        title=f"MCP event stores: {options.sessions} sessions × {options.events} messages"
    )
    table.add_column("store")
    table.add_column("store/s", justify="right")
    table.add_column("replay/s", justify="right")
    with tempfile.TemporaryDirectory() as tmp, _stores(Path(tmp)) as stores:
        for name, make in stores:
            best_store, best_replay = 0.0, 0.0
            for _ in range(options.repeat):
                stored, replayed = asyncio.run(_measure(make, options.sessions, options.events))
                best_store, best_replay = max(best_store, stored), max(best_replay, replayed)
            table.add_row(name, f"{best_store:,.0f}", f"{best_replay:,.0f}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
