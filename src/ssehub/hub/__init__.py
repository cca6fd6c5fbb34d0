"""The hub: topics, subscriptions, cursors, history, backpressure.

Depends on :mod:`ssehub.protocol` only; knows nothing of HTTP.
"""

from __future__ import annotations

from ..errors import HubClosingError
from ._access import (
    ALL_TOPICS,
    NO_GRANT,
    InvalidSelectorError,
    Selector,
    TopicGrant,
)
from ._config import HubConfig
from ._cursor import RESET_EVENT, format_cursor, parse_cursor
from ._guard import WriteGuard
from ._hub import Hub, Published
from ._rewind import EARLIEST, MAX_REWIND_EVENTS, MAX_REWIND_SECONDS, Rewind, parse_rewind
from ._stats import HubStats
from ._stream import HEARTBEAT, Stream
from ._subscription import Subscription
from ._topics import validate_event_type, validate_topic
from ._types import ReadResult, Retention, StoredEvent
from .backends import DEFAULT_STORE, Backend, StoreURL, open_backend, parse_store_url

__all__ = [
    "ALL_TOPICS",
    "DEFAULT_STORE",
    "EARLIEST",
    "HEARTBEAT",
    "MAX_REWIND_EVENTS",
    "MAX_REWIND_SECONDS",
    "NO_GRANT",
    "RESET_EVENT",
    "Backend",
    "Hub",
    "HubClosingError",
    "HubConfig",
    "HubStats",
    "InvalidSelectorError",
    "Published",
    "ReadResult",
    "Retention",
    "Rewind",
    "Selector",
    "StoreURL",
    "StoredEvent",
    "Stream",
    "Subscription",
    "TopicGrant",
    "WriteGuard",
    "format_cursor",
    "open_backend",
    "parse_cursor",
    "parse_rewind",
    "parse_store_url",
    "validate_event_type",
    "validate_topic",
]
