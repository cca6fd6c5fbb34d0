"""Hostile publishers against a real hub on every store (issue 9, findings 1, 5, 11, 16).

Each refusal is a JSON 4xx, stores nothing, and the hub keeps serving: a
subscriber connected throughout receives exactly the good events.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import (
    HubProcess,
    RedisProcess,
    redis_server_path,
    start_hub,
    start_redis,
)
from tests.support.sse import open_stream


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with start_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["memory", "sqlite", "redis"], scope="module")
def any_store_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    workdir = tmp_path_factory.mktemp(request.param)
    store = {
        "memory": "memory",
        "sqlite": f"sqlite:{workdir / 'hub.db'}",
    }.get(request.param)
    if store is None:
        store = request.getfixturevalue("redis").url
    args = ["--store", store, "--heartbeat", "1", "--no-ticker", "--max-body", "500000"]
    with start_hub(args, log_dir=workdir) as hub:
        yield hub


def head(hub: HubProcess) -> int:
    return int(httpx.get(f"{hub.url}/healthz", timeout=10).json()["head"])


POISON = [
    pytest.param(
        b'{"data": "\\ud800"}', "application/json", 422, "invalid_event", id="surrogate-data"
    ),
    pytest.param(
        b'{"data": "x", "event": "\\udfff"}',
        "application/json",
        422,
        "invalid_event",
        id="surrogate-event",
    ),
    pytest.param(
        b"[" * 3000 + b"]" * 3000, "application/json", 400, "invalid_json", id="deep-nesting"
    ),
    pytest.param(
        b'{"data": ' + b"9" * 5000 + b"}", "application/json", 400, "invalid_json", id="huge-int"
    ),
    pytest.param(b'{"data": NaN}', "application/json", 400, "invalid_json", id="nan"),
    pytest.param(b'{"data": [Infinity]}', "application/json", 400, "invalid_json", id="infinity"),
    pytest.param(b'{"data": 1e999}', "application/json", 400, "invalid_json", id="overflow"),
    pytest.param(b"\n" * 400_000, "text/plain", 413, "event_too_large", id="newline-bomb"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "code"), POISON)
def test_hostile_publish_is_refused_stores_nothing_and_breaks_no_stream(
    any_store_hub: HubProcess, body: bytes, content_type: str, status: int, code: str
) -> None:
    hub = any_store_hub
    topic = f"poison-{code}-{len(body)}"
    with open_stream(f"{hub.url}/topics/{topic}") as reader:
        reader.read_until(b"retry")
        before = head(hub)
        answer = httpx.post(
            f"{hub.url}/topics/{topic}",
            content=body,
            headers={"content-type": content_type},
            timeout=10,
        )
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"] == code
        assert head(hub) == before
        good = httpx.post(f"{hub.url}/topics/{topic}", json={"data": "good"}, timeout=10)
        assert good.status_code == 201
        events = reader.read_events(1)
    assert [e.data for e in events] == ["good"]
    # A resume from before the refused publish replays exactly the good event.
    cursor = f"{good.json()['id'].rsplit('-', 1)[0]}-{before}"
    with open_stream(f"{hub.url}/topics/{topic}", headers={"Last-Event-ID": cursor}) as again:
        assert [e.data for e in again.read_events(1)] == ["good"]


def test_405_on_a_topic_names_both_methods(hub: HubProcess) -> None:
    answer = httpx.delete(f"{hub.url}/topics/t", timeout=10)
    assert answer.status_code == 405
    assert {"GET", "POST"} <= {m.strip() for m in answer.headers["allow"].split(",")}
    assert answer.json()["error"] == "method_not_allowed"


def test_an_empty_last_event_id_header_does_not_override_the_query_cursor(hub: HubProcess) -> None:
    first = httpx.post(f"{hub.url}/topics/q", json={"data": "one"}, timeout=10).json()["id"]
    httpx.post(f"{hub.url}/topics/q", json={"data": "two"}, timeout=10)
    with open_stream(
        f"{hub.url}/topics/q?last_event_id={first}", headers={"Last-Event-ID": ""}
    ) as reader:
        assert [e.data for e in reader.read_events(1)] == ["two"]


def test_a_full_hub_tells_a_browser_to_come_back_later_and_others_why(tmp_path: Path) -> None:
    """Issue 9, finding 18: an EventSource gives up for good on a 503."""
    args = ["--store", "memory", "--max-connections", "1"]
    with start_hub(args, log_dir=tmp_path) as hub, open_stream(f"{hub.url}/topics/a") as first:
        first.read_until(b"retry")
        browser = httpx.get(
            f"{hub.url}/topics/b", headers={"Accept": "text/event-stream"}, timeout=10
        )
        program = httpx.get(
            f"{hub.url}/topics/b",
            headers={"Accept": "text/event-stream, application/json;q=0.5"},
            timeout=10,
        )
    assert browser.status_code == 200
    assert browser.headers["content-type"] == "text/event-stream"
    lines = browser.text.splitlines()
    assert lines[0].startswith(": 503 too_many_connections")
    retry = int(lines[1].removeprefix("retry: "))
    assert 5000 <= retry <= 15000
    assert program.status_code == 503
    assert program.json()["error"] == "too_many_connections"
