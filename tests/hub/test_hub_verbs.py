"""The verbs that servers and demos use instead of reaching into ``hub.backend``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ssehub.hub import Hub, HubConfig, format_cursor, open_backend
from ssehub.hub.backends.memory import MemoryBackend


async def test_epoch_head_read_and_format_cursor_answer_for_the_store() -> None:
    backend = open_backend("memory")
    hub = Hub(backend)
    await hub.start(background=False)
    try:
        assert hub.epoch == backend.epoch
        assert await hub.head() == 0
        published = await hub.publish("news", "a")
        await hub.publish("other", "b")
        assert await hub.head() == 2
        assert hub.format_cursor(published.seq) == published.id == format_cursor(hub.epoch, 1)
        result = await hub.read(["news"], 0, 10)
        assert [e.data for e in result.events] == ["a"]
    finally:
        await hub.aclose()


async def test_in_process_stores_report_their_live_feed_connected(tmp_path: Path) -> None:
    memory = Hub(open_backend("memory"))
    sqlite = Hub(open_backend(f"sqlite:{tmp_path / 'events.db'}"))
    assert memory.feed_connected
    assert not sqlite.feed_connected  # not open yet
    await sqlite.start(background=False)
    assert sqlite.feed_connected
    await sqlite.aclose()
    assert not sqlite.feed_connected


class _PruneRecorder(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.pruned_at: list[float] = []

    async def prune(self, now: float) -> int:
        self.pruned_at.append(now)
        return 0


async def test_age_retention_is_measured_against_the_injected_wall_clock() -> None:
    backend = _PruneRecorder()
    config = HubConfig(heartbeat_interval=0.02, prune_interval=0.001)
    hub = Hub(backend, config, wall_clock=lambda: 1_234.5)
    await hub.start()
    try:
        deadline = time.monotonic() + 10.0
        while not backend.pruned_at:
            assert time.monotonic() < deadline, "the hub never pruned"
            await asyncio.sleep(0.01)
    finally:
        await hub.aclose()
    assert backend.pruned_at[0] == 1_234.5
