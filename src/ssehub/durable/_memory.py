"""Durable streams in this process's memory (``--store memory``): lost on restart."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace

from ._model import Record, StreamMeta
from ._store import Change, Notifier

__all__ = ["MemoryDurableStore"]


class MemoryDurableStore:
    """Metadata and records in dicts; a commit runs with no ``await``, so it is atomic."""

    def __init__(self) -> None:
        self.notifier = Notifier()
        self._metas: dict[str, StreamMeta] = {}
        self._ends: dict[str, list[int]] = {}
        self._data: dict[str, list[bytes]] = {}

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def names_with_expiry(self) -> list[str]:
        return [
            name
            for name, meta in self._metas.items()
            if meta.ttl is not None or meta.expires_ts is not None
        ]

    async def load(self, name: str) -> StreamMeta | None:
        meta = self._metas.get(name)
        return None if meta is None else replace(meta, producers=dict(meta.producers))

    async def commit(self, changes: Sequence[Change]) -> bool:
        for change in changes:
            current = self._metas.get(change.name)
            if (current.version if current is not None else 0) != change.expected:
                return False
        for change in changes:
            if change.drop is not None:
                self._ends.pop(change.drop, None)
                self._data.pop(change.drop, None)
            if change.meta is None:
                self._metas.pop(change.name, None)
                continue
            meta = replace(change.meta, version=change.expected + 1)
            ends = self._ends.setdefault(meta.id, [])
            data = self._data.setdefault(meta.id, [])
            if change.copy is not None:
                source, upto = change.copy
                source_ends = self._ends.get(source, [])
                count = bisect.bisect_right(source_ends, upto)
                ends.extend(source_ends[:count])
                data.extend(self._data.get(source, [])[:count])
            for end, chunk in change.records:
                ends.append(end)
                data.append(chunk)
            if change.trim_to is not None:
                cut = bisect.bisect_right(ends, change.trim_to)
                del ends[:cut], data[:cut]
            self._metas[change.name] = meta
        return True

    async def read(self, stream_id: str, after: int, max_bytes: int) -> list[Record]:
        ends = self._ends.get(stream_id, [])
        data = self._data.get(stream_id, [])
        index = bisect.bisect_right(ends, after)
        out: list[Record] = []
        size = 0
        while index < len(ends) and (not out or size + len(data[index]) <= max_bytes):
            out.append((ends[index], data[index]))
            size += len(data[index])
            index += 1
        return out

    async def touch(self, name: str, accessed: float) -> None:
        meta = self._metas.get(name)
        if meta is not None:
            meta.accessed = accessed
