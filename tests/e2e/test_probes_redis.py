"""A Redis blip must not restart every pod: ``/livez`` stays 200, ``/readyz`` is 503 (issue 12)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.polling import poll_until
from tests.support.processes import RedisProcess, launch_redis, start_hub

pytestmark = pytest.mark.redis


def status(url: str) -> int:
    return httpx.get(url, timeout=30).status_code


def test_during_a_redis_outage_livez_answers_and_readyz_refuses(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    with start_hub(["--store", redis_server.url], log_dir=tmp_path) as hub:
        assert (status(f"{hub.url}/livez"), status(f"{hub.url}/readyz")) == (200, 200)
        redis_server.stop()
        poll_until(lambda: status(f"{hub.url}/readyz") == 503, "readyz to refuse")
        assert status(f"{hub.url}/livez") == 200
        back = launch_redis(redis_server.port, redis_server.dir)
        try:
            poll_until(lambda: status(f"{hub.url}/readyz") == 200, "readyz to recover")
            assert status(f"{hub.url}/livez") == 200
        finally:
            back.stop()
