"""``POST /topics/{topic}`` with an ``Idempotency-Key`` header, on a real ``ssehub serve``.

Issue 9, finding 9: a publisher that got a timeout can't tell whether its event
was stored; retrying with the same key stores it exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support.processes import (
    HubProcess,
    RedisProcess,
    redis_server_path,
    start_hub,
    start_redis,
)


def post(hub: HubProcess, topic: str, data: str, key: str | None = None) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return httpx.post(f"{hub.url}/topics/{topic}", json={"data": data}, headers=headers, timeout=20)


def seq_of(answer: httpx.Response) -> int:
    return int(answer.json()["id"].rsplit("-", 1)[1])


def test_a_repeated_idempotency_key_gets_the_first_answer_and_stores_nothing(
    hub: HubProcess,
) -> None:
    first = post(hub, "orders", "paid", key="order-42-paid")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = post(hub, "orders", "paid", key="order-42-paid")
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    after = post(hub, "orders", "next")
    assert seq_of(after) == seq_of(first) + 1  # the repeat minted no seq


def test_an_idempotency_key_reused_for_another_event_is_a_409(hub: HubProcess) -> None:
    assert post(hub, "orders", "paid", key="k-1").status_code == 201
    conflict = post(hub, "orders", "refunded", key="k-1")
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "idempotency_conflict"


def test_a_malformed_idempotency_key_is_a_400_and_stores_nothing(hub: HubProcess) -> None:
    before = post(hub, "t", "before")
    for key in ["", "x" * 129, "a b", "tab\tkey"]:
        bad = post(hub, "t", "x", key=key)
        assert bad.status_code == 400, key
        assert bad.json()["error"] == "invalid_idempotency_key"
    assert seq_of(post(hub, "t", "after")) == seq_of(before) + 1


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with start_redis(tmp_path / "redis") as server:
        yield server


@pytest.mark.redis
def test_a_publish_to_a_hung_redis_says_the_outcome_is_unknown_and_a_keyed_retry_is_exact(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    admin = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with start_hub(["--store", redis_server.url], log_dir=tmp_path) as hub:
        assert post(hub, "t", "before").status_code == 201
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        try:
            hung = post(hub, "t", "during", key="pub-7")  # the store's 5 s command timeout
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        assert hung.status_code == 503
        assert hung.json()["error"] == "store_unavailable"
        assert "may or may not be stored" in hung.json()["message"]
        assert "same Idempotency-Key" in hung.json()["message"]
        deadline = time.monotonic() + 10
        while admin.xlen("ssehub:t:t") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        retry = post(hub, "t", "during", key="pub-7")
        assert retry.status_code == 201, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        entries: Any = admin.xrange("ssehub:t:t")
        assert [fields["data"] for _, fields in entries] == ["before", "during"]
        assert seq_of(retry) == int(entries[-1][0].split("-")[0])
    admin.close()
