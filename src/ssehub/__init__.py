"""ssehub: Server-Sent Events done right.

The curated public surface.  The protocol core lives in :mod:`ssehub.protocol`,
the hub in :mod:`ssehub.hub`, the ASGI app in :mod:`ssehub.server`, the
reconnecting client in :mod:`ssehub.client`.
"""

from __future__ import annotations

from .errors import EncodeError, EventTooLargeError, SSEHubError
from .protocol import Event, EventStreamParser, ServerSentEvent, encode

__all__ = [
    "EncodeError",
    "Event",
    "EventStreamParser",
    "EventTooLargeError",
    "SSEHubError",
    "ServerSentEvent",
    "__version__",
    "encode",
]

__version__ = "0.1.0"
