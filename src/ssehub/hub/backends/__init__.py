"""History stores behind one interface (:class:`Backend`), chosen by a URL.

``memory`` (nothing kept), ``sqlite:PATH`` (durable, the default) and
``redis://…`` / ``rediss://…`` (shared by several hub processes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._types import Retention
from ._base import Backend, LiveListener

__all__ = [
    "DEFAULT_STORE",
    "Backend",
    "LiveListener",
    "StoreURL",
    "open_backend",
    "parse_store_url",
]

#: The store ``ssehub serve`` uses when none is named.
DEFAULT_STORE = "sqlite:ssehub.db"


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A checked store URL: ``kind`` names the backend, ``location`` what it opens.

    ``memory``: ``location`` is empty; ``sqlite``: the file path; ``redis``: the
    URL as given (``redis://``, ``rediss://`` or ``unix://``).
    """

    kind: Literal["memory", "sqlite", "redis"]
    location: str = ""


def parse_store_url(url: str) -> StoreURL:
    """Check a store URL without building anything (no file, socket or pool).

    Raises :class:`ValueError` naming the accepted forms for anything else.
    """
    if url == "memory":
        return StoreURL("memory")
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise ValueError("sqlite store needs a path: sqlite:PATH (e.g. sqlite:ssehub.db)")
        return StoreURL("sqlite", path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return StoreURL("redis", url)
    raise ValueError(f"unknown store {url!r}: use memory, sqlite:PATH or redis://HOST:PORT/DB")


def open_backend(url: str, retention: Retention | None = None) -> Backend:
    """Build (not yet start) the backend a store URL names.

    Raises :class:`ValueError` (from :func:`parse_store_url`) for a bad URL.
    """
    retention = retention or Retention()
    store = parse_store_url(url)
    if store.kind == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(retention=retention)
    if store.kind == "sqlite":
        from .sqlite import SQLiteBackend

        return SQLiteBackend(store.location, retention=retention)
    from .redis import RedisBackend

    return RedisBackend(store.location, retention=retention)
