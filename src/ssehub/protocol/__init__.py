"""The sans-I/O protocol core: events, encoder, parser, reconnect policy.

Standard library only; no sockets, clocks or asyncio.  Bytes in, events out
(:class:`EventStreamParser`); events in, bytes out (:func:`encode`).
"""

from __future__ import annotations

from ._encoder import encode, encode_comment
from ._events import Event, ServerSentEvent
from ._parser import DEFAULT_MAX_EVENT_SIZE, EventStreamParser
from ._reconnect import DEFAULT_RECONNECT_DELAY, Jitter, ReconnectPolicy, ReconnectState

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_RECONNECT_DELAY",
    "Event",
    "EventStreamParser",
    "Jitter",
    "ReconnectPolicy",
    "ReconnectState",
    "ServerSentEvent",
    "encode",
    "encode_comment",
]

# The public names report the public module (trio's and httpx's practice): reprs,
# tracebacks and pickles say ``ssehub.protocol.Event``, never a private path.
for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__") and not isinstance(_obj, int):
        _obj.__module__ = __name__
del _name, _obj
