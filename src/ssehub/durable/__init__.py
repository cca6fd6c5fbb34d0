"""Durable Streams (Electric's HTTP protocol, v1) served by the hub: ``/v1/stream/{name}``.

Streams at URLs with offsets, catch-up reads, long-poll and SSE live reads,
idempotent producers, closure, JSON mode and forks, kept in the hub's store
(memory, SQLite or Redis).  ``ssehub serve`` mounts it; in your own app::

    from ssehub.durable import DurableStreamsPlugin
    from ssehub.server import HubApp

    app = HubApp(plugins=[DurableStreamsPlugin()])
"""

from __future__ import annotations

from ._memory import MemoryDurableStore
from ._plugin import DurableStreamsPlugin, open_durable_store
from ._service import DurableStreams
from ._store import Change, DurableStore, Notifier

__all__ = [
    "Change",
    "DurableStore",
    "DurableStreams",
    "DurableStreamsPlugin",
    "MemoryDurableStore",
    "Notifier",
    "open_durable_store",
]
