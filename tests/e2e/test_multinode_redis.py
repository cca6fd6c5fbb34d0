"""Several ``ssehub serve`` nodes, one private ``redis-server``: one hub.

Events published on any node reach subscribers on every node; a cursor issued
by one node resumes exactly on another; while Redis is down, publishing gets a
503 with a JSON body and stores nothing, and open streams carry on once Redis
is back; a wiped Redis ends every stream and old cursors get the reset event.
(A node killed under load: ``test_multinode_failover.py``.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis

from ssehub.hub import RESET_EVENT
from tests.support.processes import (
    HubProcess,
    RedisProcess,
    launch_redis,
    start_hub,
)
from tests.support.sse import open_stream

pytestmark = pytest.mark.redis


@pytest.fixture
def nodes(redis_server: RedisProcess, tmp_path: Path) -> Iterator[list[HubProcess]]:
    """Three hub processes sharing the test's Redis."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                start_hub(["--store", redis_server.url, "--heartbeat", "1"], log_dir=tmp_path)
            )
            for _ in range(3)
        ]


def publish(node: HubProcess, topic: str, data: str, event: str | None = None) -> str:
    body = {"data": data} if event is None else {"data": data, "event": event}
    answer = httpx.post(f"{node.url}/topics/{topic}", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_every_node_serves_the_same_store(nodes: list[HubProcess]) -> None:
    health = [httpx.get(f"{node.url}/healthz", timeout=10).json() for node in nodes]
    assert len({h["epoch"] for h in health}) == 1
    publish(nodes[0], "t", "x")
    assert [httpx.get(f"{n.url}/healthz", timeout=10).json()["head"] for n in nodes] == [1, 1, 1]


def test_an_event_published_on_one_node_reaches_subscribers_on_the_others(
    nodes: list[HubProcess],
) -> None:
    a, b, c = nodes
    with (
        open_stream(f"{b.url}/topics/chat/42") as on_b,
        open_stream(f"{c.url}/events?topic=chat/42&topic=news") as on_c,
    ):
        on_b.read_until(b"retry: ")
        on_c.read_until(b"retry: ")
        first = publish(a, "chat/42", "你好\nworld", "content")
        second = publish(c, "news", "from c")
        third = publish(b, "chat/42", "from b")
        got_b = on_b.read_events(2)
        got_c = on_c.read_events(3)
    assert [(e.event, e.data, e.id) for e in got_b] == [
        ("content", "你好\nworld", first),
        ("message", "from b", third),
    ]
    assert [(e.data, e.id) for e in got_c] == [
        ("你好\nworld", first),
        ("from c", second),
        ("from b", third),
    ]


@pytest.mark.parametrize(
    ("path", "topics"),
    [("/topics/a", {"a"}), ("/events?topic=a&topic=b", {"a", "b"})],
    ids=["one-topic", "two-topics"],
)
def test_a_cursor_issued_by_one_node_resumes_exactly_on_another(
    nodes: list[HubProcess], path: str, topics: set[str]
) -> None:
    a, b, c = nodes
    published: list[tuple[str, str, str]] = []  # (id, topic, data)
    with open_stream(f"{a.url}{path}") as on_a:
        on_a.read_until(b"retry: ")
        for i in range(4):
            topic = "abc"[i % 3]
            published.append((publish(a, topic, f"first {i}"), topic, f"first {i}"))
        wanted = [p for p in published if p[1] in topics]
        seen = on_a.read_events(len(wanted))
        cursor = seen[0].id  # issued by node a
    assert cursor == wanted[0][0]
    for i in range(6):  # published while the client is away, on other nodes
        topic = "abc"[i % 3]
        node = (b, c)[i % 2]
        published.append((publish(node, topic, f"away {i}"), topic, f"away {i}"))
    expected = [(p[0], p[2]) for p in published if p[1] in topics][1:]
    with open_stream(f"{b.url}{path}", headers={"Last-Event-ID": cursor}) as on_b:
        resumed = on_b.read_events(len(expected))
        tail = publish(c, "a", "live")
        resumed = on_b.read_events(len(expected) + 1)
    assert [(e.id, e.data) for e in resumed] == [*expected, (tail, "live")]
    assert RESET_EVENT not in {e.event for e in resumed}


def test_publishing_during_a_redis_outage_gets_503_and_streams_carry_on_after(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    args = ["--store", redis_server.url, "--heartbeat", "1"]
    with (
        start_hub(args, log_dir=tmp_path) as a,
        start_hub(args, log_dir=tmp_path) as b,
        open_stream(f"{b.url}/topics/t", read_timeout=30) as on_b,
    ):
        on_b.read_until(b"retry: ")
        before = publish(a, "t", "before the outage")
        assert on_b.read_events(1)[0].id == before
        with redis.Redis.from_url(redis_server.url) as admin:
            admin.save()
        redis_server.stop()

        refused = httpx.post(f"{a.url}/topics/t", json={"data": "while down"}, timeout=30)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "store_unavailable"
        assert httpx.get(f"{a.url}/healthz", timeout=30).status_code == 503

        back = launch_redis(redis_server.port, redis_server.dir)
        try:
            after = _publish_once_redis_answers(a, "t", "after the outage")
            events = on_b.read_events(2, timeout=30)  # the same stream, still open
            assert [(e.id, e.data) for e in events] == [
                (before, "before the outage"),
                (after, "after the outage"),
            ]
            assert json.loads(httpx.get(f"{b.url}/healthz", timeout=10).text)["head"] == 2
        finally:
            back.stop()


def _publish_once_redis_answers(node: HubProcess, topic: str, data: str) -> str:
    """POST until it is stored: every 503 before that stored nothing (bounded)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = httpx.post(f"{node.url}/topics/{topic}", json={"data": data}, timeout=30)
        if answer.status_code == 201:
            return str(answer.json()["id"])
        assert answer.status_code == 503, answer.text
        time.sleep(0.05)  # polling interval, not a wait for something
    raise AssertionError("redis did not come back")


def test_a_wiped_redis_ends_every_stream_and_old_cursors_get_the_reset_event(
    redis_server: RedisProcess, nodes: list[HubProcess]
) -> None:
    a, b, _ = nodes
    with open_stream(f"{b.url}/topics/t") as on_b:
        on_b.read_until(b"retry: ")
        cursor = publish(a, "t", "in the old store")
        assert on_b.read_events(1)[0].id == cursor
        with redis.Redis.from_url(redis_server.url) as admin:
            admin.flushall()
        on_b.read_to_end(timeout=30)  # node b noticed the new epoch and ended its streams
    with open_stream(f"{b.url}/topics/t", headers={"Last-Event-ID": cursor}) as again:
        reset = again.read_events(1)[0]
        assert reset.event == RESET_EVENT
        assert json.loads(reset.data)["reason"] == "unknown-epoch"
        fresh = publish(a, "t", "in the new store")
        assert again.read_events(2)[1].id == fresh
    assert fresh.endswith("-1")
    assert fresh.partition("-")[0] != cursor.partition("-")[0]
