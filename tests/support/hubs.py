"""In-process hubs and backends: memory, SQLite or Redis, with injected clock and random source.

``make_backend`` builds (does not start) one backend of a kind; ``open_hub``
runs a started :class:`~ssehub.hub.Hub` on one for the duration of a block.
Redis backends need a ``redis_url`` (the ``redis_server`` or
``shared_redis_server`` fixture) and a key ``prefix`` of their own when they
share a server.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ssehub.hub import Hub, HubConfig, Retention
from ssehub.hub.backends import Backend
from ssehub.hub.backends.memory import MemoryBackend
from ssehub.hub.backends.sqlite import SQLiteBackend

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["NO_BOUNDS", "Opener", "StoreKind", "make_backend", "open_hub"]

StoreKind = Literal["memory", "sqlite", "redis"]

#: The ``opened`` fixture of ``tests/hub``: ``await opened(retention, clock)`` starts a
#: backend of the test's store kind and returns it with the recorder of its live feed.
Opener = Callable[..., Awaitable[tuple[Backend, "Recorder"]]]

#: History kept with no count or age bound.
NO_BOUNDS = Retention(max_events=None, max_age=None)


def make_backend(
    kind: StoreKind,
    *,
    retention: Retention = NO_BOUNDS,
    clock: Callable[[], float] | None = None,
    path: Path | None = None,
    redis_url: str | None = None,
    prefix: str = "hub",
) -> Backend:
    """A backend of ``kind``, keeping history at ``path`` (SQLite) or ``redis_url`` (Redis)."""
    options = {} if clock is None else {"clock": clock}
    if kind == "memory":
        return MemoryBackend(retention=retention, **options)
    if kind == "sqlite":
        if path is None:
            raise ValueError("an SQLite backend needs a path")
        return SQLiteBackend(path, retention=retention, **options)
    if redis_url is None:
        raise ValueError("a Redis backend needs redis_url")
    from ssehub.hub.backends.redis import RedisBackend  # the redis package is an extra

    backend: Backend = RedisBackend(redis_url, retention=retention, prefix=prefix, **options)
    return backend


@asynccontextmanager
async def open_hub(
    backend: Backend | None = None,
    config: HubConfig | None = None,
    *,
    clock: Callable[[], float] | None = None,
    wall_clock: Callable[[], float] | None = None,
    seed: int = 7,
    background: bool = False,
) -> AsyncIterator[Hub]:
    """A started hub (in-memory store unless ``backend`` is given), closed when the block ends.

    ``background=False`` runs no heartbeat/flush/prune tasks: the test drives
    time with ``clock`` and calls the hub's periodic steps itself.
    """
    options = {} if clock is None else {"clock": clock}
    if wall_clock is not None:
        options["wall_clock"] = wall_clock
    hub = Hub(
        backend or MemoryBackend(retention=NO_BOUNDS),
        config,
        rng=random.Random(seed),
        **options,
    )
    await hub.start(background=background)
    try:
        yield hub
    finally:
        await hub.aclose()
