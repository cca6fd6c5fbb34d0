"""Durable Streams as a plug-in: ``HubApp(plugins=[DurableStreamsPlugin()])``.

The store follows the hub's ``--store`` URL (memory, ``sqlite:PATH`` — the
same file, its own tables — or ``redis://…`` — the same server, its own
keys), so every process or node sharing the hub's store serves the same
streams.  Expired streams are removed by a sweep every ``sweep_interval``;
until then an expired stream already answers 404 (410 while forks use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.routing import BaseRoute, Route

from ..hub import Hub, parse_store_url
from ..server import AccessPolicy, ServerSettings
from ._api import PREFIX, DurableStreamsAPI
from ._live import LiveReads
from ._memory import MemoryDurableStore
from ._service import DurableStreams
from ._store import DurableStore

__all__ = ["DurableStreamsPlugin", "open_durable_store"]

logger = logging.getLogger("ssehub.durable")


def open_durable_store(url: str) -> DurableStore:
    """The durable-stream store for a hub store URL (nothing opens before ``start``)."""
    parsed = parse_store_url(url)
    if parsed.kind == "sqlite":
        from ._sqlite import SQLiteDurableStore

        return SQLiteDurableStore(parsed.location)
    if parsed.kind == "redis":
        from ._redis import RedisDurableStore

        return RedisDurableStore(parsed.location)
    return MemoryDurableStore()


class DurableStreamsPlugin:
    """Serves ``/v1/stream/{name}`` beside the hub's API, on the hub's store."""

    def __init__(self, store: DurableStore | None = None, *, sweep_interval: float = 60.0) -> None:
        self._store = store
        self.sweep_interval = sweep_interval
        self.streams: DurableStreams | None = None

    def routes(self, hub: Hub, settings: ServerSettings) -> Sequence[BaseRoute]:
        store = self._store or open_durable_store(settings.store)
        self._store = store
        max_bytes = settings.durable_max_bytes or None
        self.streams = DurableStreams(store, max_bytes=max_bytes)
        live = LiveReads(self.streams, timeout=settings.long_poll_timeout)
        api = DurableStreamsAPI(self.streams, live, settings, AccessPolicy(settings), hub=hub)
        return [
            Route(
                PREFIX + "{name:path}",
                api.endpoint,
                methods=["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"],
            )
        ]

    @asynccontextmanager
    async def lifespan(self, hub: Hub, settings: ServerSettings) -> AsyncIterator[None]:
        assert self._store is not None, "routes() comes first"
        assert self.streams is not None
        await self._store.start()
        sweeper = asyncio.create_task(self._sweep_loop(self.streams))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await self._store.aclose()

    async def _sweep_loop(self, streams: DurableStreams) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                names = await streams.store.names_with_expiry()
                await streams.sweep(names)
            except Exception:
                logger.exception("sweeping expired durable streams failed")
