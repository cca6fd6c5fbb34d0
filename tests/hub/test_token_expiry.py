"""A stream ends, with a jittered ``retry:``, no later than its token's ``exp``.

Issue 11 (access control): a browser then reconnects with a fresh cookie.
"""

from __future__ import annotations

import random

from ssehub.hub import Hub, HubConfig
from ssehub.hub._hub import TOKEN_EXPIRY_MARGIN
from ssehub.hub.backends.memory import MemoryBackend
from ssehub.protocol import EventStreamParser
from tests.support.clock import FakeClock


async def test_a_stream_ends_with_a_jittered_retry_before_its_token_expires() -> None:
    clock, wall = FakeClock(), FakeClock(1_000.0)
    config = HubConfig(retry=3000)
    retries = set()
    for seed in range(5):
        hub = Hub(MemoryBackend(), config, clock=clock, wall_clock=wall, rng=random.Random(seed))
        await hub.start(background=False)
        try:
            wall.now = 1_000.0
            expiring = await hub.open(["t"], expires_at=1_010.0)
            forever = await hub.open(["t"])
            wall.now = 1_010.0 - TOKEN_EXPIRY_MARGIN - 0.01
            hub.tick(clock())
            assert not expiring.closed
            wall.now += 0.02  # within one tick of exp: the tick ends it
            hub.tick(clock())
            assert expiring.close_reason == "token-expired"
            assert not forever.closed
            chunks = [chunk async for chunk in expiring.chunks()]
            parser = EventStreamParser()
            for chunk in chunks:
                parser.feed(chunk)
            assert parser.retry is not None
            assert 1500 <= parser.retry <= 4500
            retries.add(parser.retry)
        finally:
            await hub.aclose()
    assert len(retries) > 1  # jittered, not one value for every client
