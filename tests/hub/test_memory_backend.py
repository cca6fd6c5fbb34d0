"""What only the memory backend promises: its per-topic and per-key state is bounded.

Issue 9, finding 7: the store kept ~1.65 KB per topic forever (100k topics:
+190 MB, still there after every event expired).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from ssehub.hub._types import Retention
from ssehub.hub.backends.memory import MemoryBackend


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_expired_topics_leave_no_per_topic_state() -> None:
    clock = Clock(1_000.0)
    retention = Retention(max_events=5, max_age=10.0, max_topics=None)
    backend = MemoryBackend(retention=retention, clock=clock)
    for i in range(100_000):
        await backend.append(f"topic/{i}", "x")
    assert len(backend._topics) == 100_000
    assert await backend.prune(now=1_011.0) == 100_000
    assert backend._topics == {}
    assert (await backend.read(["topic/7"], after=0, limit=10)).gap


def test_expired_topics_give_their_memory_back_for_reuse() -> None:
    """Publishing to 50k fresh topics and expiring them, over and over, does not grow RSS."""
    script = textwrap.dedent(
        """
        import asyncio, gc
        from ssehub.hub._types import Retention
        from ssehub.hub.backends.memory import MemoryBackend

        def rss_kib():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])

        async def main():
            now = [1000.0]
            retention = Retention(max_events=None, max_age=10.0, max_topics=None)
            backend = MemoryBackend(retention=retention, clock=lambda: now[0])
            after_first = 0
            for cycle in range(4):
                for i in range(50_000):
                    await backend.append(f"cycle{cycle}/topic/{i}", "x")
                now[0] += 100.0
                await backend.prune(now=now[0])
                gc.collect()
                if cycle == 0:
                    after_first = rss_kib()
            print(rss_kib() - after_first)

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    growth_kib = int(done.stdout.strip())
    # Kept state would be ~80 MB per cycle of 50k topics; freed state is reused.
    assert growth_kib < 16 * 1024, f"RSS grew by {growth_kib} KiB over three more cycles"


async def test_idempotency_records_are_bounded_by_count() -> None:
    backend = MemoryBackend(
        retention=Retention(max_events=None, max_age=None), max_idempotency_keys=3
    )
    first = [await backend.append("t", str(i), idempotency_key=f"k{i}") for i in range(5)]
    assert len(backend._keys) == 3
    assert (await backend.append("t", "4", idempotency_key="k4")).replayed
    # The oldest records went first: their keys store a new event again.
    again = await backend.append("t", "0", idempotency_key="k0")
    assert not again.replayed
    assert again.seq > first[-1].seq
    assert len(backend._keys) == 3
