"""An ``EventStore`` for the ``mcp`` SDK on ssehub's stores (``pip install 'ssehub[mcp]'``).

``HubEventStore("sqlite:PATH")`` (or ``"redis://…"``, ``"memory"``) is an
``mcp.server.streamable_http.EventStore``: Streamable HTTP streams resume after
a cut with ``Last-Event-ID``, from a durable store shared by every process that
opens it.  Serve it with :class:`HubSessionManager` so each session replays only
its own streams and a client resumes on any process::

    store = HubEventStore("redis://localhost:6379/0")
    manager = HubSessionManager(server, store, retry_interval=1000)
    app = Starlette(routes=[Mount("/mcp", StreamableHTTPASGIApp(manager))],
                    lifespan=lambda app: manager.run())
"""

from __future__ import annotations

from ._manager import HubSessionManager
from ._stats import EventStoreStats
from ._store import PRIMING_EVENT, HubEventStore, StoredMessage

__all__ = [
    "PRIMING_EVENT",
    "EventStoreStats",
    "HubEventStore",
    "HubSessionManager",
    "StoredMessage",
]
