"""History stores behind one interface (:class:`Backend`), chosen by a URL.

``memory`` (nothing kept), ``sqlite:PATH`` (durable, the default) and
``redis://…`` / ``rediss://…`` (shared by several hub processes).
"""

from __future__ import annotations

from .._types import Retention
from ._base import Backend, LiveListener

__all__ = ["DEFAULT_STORE", "Backend", "LiveListener", "open_backend"]

#: The store ``ssehub serve`` uses when none is named.
DEFAULT_STORE = "sqlite:ssehub.db"


def open_backend(url: str, retention: Retention | None = None) -> Backend:
    """Build (not yet start) the backend a store URL names.

    Raises :class:`ValueError` naming the accepted forms for anything else.
    """
    retention = retention or Retention()
    if url == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(retention=retention)
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise ValueError("sqlite store needs a path: sqlite:PATH (e.g. sqlite:ssehub.db)")
        from .sqlite import SQLiteBackend

        return SQLiteBackend(path, retention=retention)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisBackend

        return RedisBackend(url, retention=retention)
    raise ValueError(f"unknown store {url!r}: use memory, sqlite:PATH or redis://HOST:PORT/DB")
