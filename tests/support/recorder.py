"""A LiveListener for backend tests: records what a live feed delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ssehub.hub import StoredEvent

__all__ = ["Recorder"]


class Recorder:
    """Collects ``on_event`` / ``on_gap`` calls and waits (bounded) for conditions on them."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.gaps = 0
        self._changed = asyncio.Event()

    def on_event(self, event: StoredEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def on_gap(self) -> None:
        self.gaps += 1
        self._changed.set()

    async def wait_until(
        self, condition: Callable[[Recorder], bool], timeout: float = 15.0
    ) -> None:
        """Wait until ``condition(self)`` holds; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not condition(self):
                self._changed.clear()
                await self._changed.wait()

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[StoredEvent]:
        """Wait until ``count`` events have arrived; return them all."""
        await self.wait_until(lambda r: len(r.events) >= count, timeout)
        return self.events
