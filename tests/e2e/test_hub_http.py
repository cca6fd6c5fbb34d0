"""The hub over real HTTP: a real ``ssehub serve`` process on a loopback port.

Event streams, resume, limits on open streams and restarts.  The plain
request/response routes (publish validation, JSON errors, health, metrics,
CORS) are tested in process: ``tests/server/test_app_routes.py``.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import httpx
import pytest

from ssehub.demos._root import SEED_END_ID, SEED_EVENTS
from ssehub.hub import RESET_EVENT
from tests.support.processes import HubProcess, free_port, start_hub
from tests.support.sse import open_stream

SEED_BYTES = "".join(
    f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n" for name, data in SEED_EVENTS
).encode()
#: The one addition to the seed's bytes (issue 10): the last event's id, which a
#: client reconnecting after the end sends back and is answered 204 (it stops).
SEED_BYTES = SEED_BYTES.replace(b"event: done\n", f"event: done\nid: {SEED_END_ID}\n".encode())


def publish(hub: HubProcess, topic: str, data: object, event: str | None = None) -> str:
    body: dict[str, object] = {"data": data}
    if event is not None:
        body["event"] = event
    answer = httpx.post(f"{hub.url}/topics/{topic}", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    assert answer.json()["topic"] == topic
    return str(answer.json()["id"])


def test_stream_headers_follow_the_seed_without_hop_by_hop_headers(hub: HubProcess) -> None:
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(b"GET /topics/news HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"retry: 3000"):
            data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "http/1.1 200 ok"
    assert "content-type: text/event-stream" in lines
    assert "cache-control: no-cache" in lines
    assert "x-accel-buffering: no" in lines
    assert not [line for line in lines if line.startswith(("connection:", "keep-alive:"))]
    # The first write comes at once: the retry and the cursor, dispatching nothing.
    assert re.search(rb"id: [0-9a-f]+-[0-9]+\nretry: 3000", body)


def test_curl_on_the_root_prints_the_seeds_demo_byte_for_byte(tmp_path: Path) -> None:
    args = ["--store", "memory", "--demo-interval", "0.01"]
    with (
        start_hub(args, log_dir=tmp_path) as hub,
        open_stream(hub.url, headers={"Accept": "*/*"}) as reader,
    ):
        body = reader.read_to_end()
        assert reader.response.headers["content-type"] == "text/event-stream"
    assert body == SEED_BYTES


def test_a_browser_navigating_to_the_root_gets_the_landing_page(hub: HubProcess) -> None:
    page = httpx.get(hub.url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "chat" in page.text


def test_published_events_reach_subscribers_with_ids(hub: HubProcess) -> None:
    with open_stream(f"{hub.url}/topics/chat/42") as reader:
        reader.read_until(b"retry: 3000")
        first = publish(hub, "chat/42", "你好\nworld", "content")
        second = publish(hub, "chat/42", {"price": 1.5})
        text = httpx.post(
            f"{hub.url}/topics/chat/42?event=plain", content="as text", timeout=10
        ).json()["id"]
        events = reader.read_events(3)
    assert [(e.event, e.data, e.id) for e in events] == [
        ("content", "你好\nworld", first),
        ("message", '{"price": 1.5}', second),
        ("plain", "as text", text),
    ]


@pytest.mark.parametrize("via", ["header", "query"])
def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(
    hub: HubProcess, via: str
) -> None:
    ids = [publish(hub, "t", f"e{i}") for i in range(6)]
    url, headers = f"{hub.url}/topics/t", {"Last-Event-ID": ids[2]}
    if via == "query":
        url, headers = f"{url}?last_event_id={ids[2]}", {}
    with open_stream(url, headers=headers) as reader:
        events = reader.read_events(3)
        assert [(e.data, e.id) for e in events] == [(f"e{i}", ids[i]) for i in (3, 4, 5)]
        live = publish(hub, "t", "live")
        assert [e.id for e in reader.read_events(4)] == [*ids[3:], live]


def test_multi_topic_subscription_resumes_in_publish_order(hub: HubProcess) -> None:
    cursor = publish(hub, "a", "a0")
    for topic, data in [("b", "b1"), ("c", "c2"), ("a", "a3"), ("b", "b4")]:
        publish(hub, topic, data)
    with open_stream(f"{hub.url}/events?topic=a&topic=b", headers={"Last-Event-ID": cursor}) as r:
        assert [e.data for e in r.read_events(3)] == ["b1", "a3", "b4"]


def test_history_and_cursors_survive_a_restart_with_the_sqlite_store(tmp_path: Path) -> None:
    store = ["--store", f"sqlite:{tmp_path / 'hub.db'}"]
    port = free_port()
    with start_hub(store, port=port, log_dir=tmp_path) as hub:
        ids = [publish(hub, "t", f"e{i}") for i in range(4)]
    with start_hub(store, port=port, log_dir=tmp_path) as hub:
        after = publish(hub, "t", "after restart")
        with open_stream(f"{hub.url}/topics/t", headers={"Last-Event-ID": ids[1]}) as reader:
            events = reader.read_events(3)
    assert [(e.data, e.id) for e in events] == [
        ("e2", ids[2]),
        ("e3", ids[3]),
        ("after restart", after),
    ]


@pytest.mark.parametrize("cursor", ["garbage", "ffffffff-12", "' OR 1=1 --"])
def test_garbage_last_event_id_gets_the_reset_event_then_live(hub: HubProcess, cursor: str) -> None:
    publish(hub, "t", "old")
    with open_stream(f"{hub.url}/topics/t", headers={"Last-Event-ID": cursor}) as reader:
        reset = reader.read_events(1)[0]
        assert reset.event == RESET_EVENT
        assert json.loads(reset.data)["last_event_id"] == cursor
        live = publish(hub, "t", "new")
        assert reader.read_events(2)[1].id == live


@pytest.mark.parametrize(
    "data",
    ["a\n\nevent: forged\ndata: evil", "line\rid: 666\r\rdata: x", "x\r\n\r\nretry: 1\r\n"],
)
def test_data_with_line_breaks_arrives_as_data_never_as_a_forged_event(
    hub: HubProcess, data: str
) -> None:
    with open_stream(f"{hub.url}/topics/t") as reader:
        reader.read_until(b"retry: 3000")
        first = publish(hub, "t", data, "note")
        last = publish(hub, "t", "sentinel")
        events = reader.read_events(2)
        assert reader.parser.retry == 3000
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    assert [(e.event, e.data, e.id) for e in events] == [
        ("note", expected, first),
        ("message", "sentinel", last),
    ]


def test_streams_over_the_connection_limit_get_503_with_retry_after(tmp_path: Path) -> None:
    with start_hub(["--store", "memory", "--max-connections", "2"], log_dir=tmp_path) as hub:
        with open_stream(f"{hub.url}/topics/a") as one, open_stream(f"{hub.url}/topics/b") as two:
            one.read_until(b"retry")
            two.read_until(b"retry")
            refused = httpx.get(f"{hub.url}/topics/c", timeout=10)
            assert refused.status_code == 503
            assert refused.headers["retry-after"]
            assert refused.json()["error"] == "too_many_connections"
        # Closed streams free their places.
        with open_stream(f"{hub.url}/topics/c") as three:
            three.read_until(b"retry")


def test_metrics_count_published_delivered_and_open_streams(hub: HubProcess) -> None:
    with open_stream(f"{hub.url}/topics/m") as reader:
        reader.read_until(b"retry")
        publish(hub, "m", "x")
        reader.read_events(1)
        metrics = httpx.get(f"{hub.url}/metrics").text
    assert "ssehub_open_streams 1.0" in metrics
    assert "ssehub_events_published_total 1.0" in metrics
    assert "ssehub_events_delivered_total 1.0" in metrics
    assert 'ssehub_topic_events_published_total{topic="m"} 1.0' in metrics


def test_idle_streams_get_heartbeat_comments(hub: HubProcess) -> None:
    with open_stream(f"{hub.url}/topics/quiet") as reader:
        reader.read_until(b":\n\n")  # the fixture's hub beats every second
        assert reader.events == []


def test_a_page_opened_from_disk_streams_the_root_with_cors_origin_null(tmp_path: Path) -> None:
    """A ``file://`` page sends ``Origin: null``; the README's ``--cors-origin null`` lets it in."""
    headers = {"Origin": "null", "Accept": "text/event-stream"}
    plain = ["--store", "memory", "--no-ticker"]
    with start_hub(plain, log_dir=tmp_path) as hub, open_stream(hub.url, headers=headers) as reader:
        assert "access-control-allow-origin" not in reader.response.headers
    args = [*plain, "--cors-origin", "null"]
    with start_hub(args, log_dir=tmp_path) as hub, open_stream(hub.url, headers=headers) as reader:
        assert reader.response.headers["access-control-allow-origin"] == "null"
        assert reader.read_events(1)[0].event == "connected"
