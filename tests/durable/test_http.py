"""``/v1/stream/{name}`` over HTTP: hostile input, bounds, retention and several nodes.

In-process (httpx on the ASGI app) for request/response answers; two real
``ssehub serve`` nodes on one Redis for the multi-node contract.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from ssehub.durable import DurableStreamsPlugin
from tests.support.apps import app_client, hub_settings
from tests.support.processes import start_hub
from tests.support.redis_server import RedisProcess

URL = "/v1/stream/s"


@pytest.mark.parametrize(
    ("method", "headers", "query"),
    [
        ("PUT", {"Stream-TTL": "1e3"}, ""),
        ("PUT", {"Stream-TTL": "60", "Stream-Expires-At": "2030-01-01T00:00:00Z"}, ""),
        ("PUT", {"Stream-Expires-At": "tomorrow"}, ""),
        ("PUT", {"Stream-Fork-Offset": "0000000000000000_0000000000000000"}, ""),
        ("PUT", {"Stream-Forked-From": "x", "Stream-Fork-Sub-Offset": "-1"}, ""),
        ("POST", {"Producer-Id": "p"}, ""),
        (
            "POST",
            {"Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "9007199254740992"},
            "",
        ),
        ("POST", {"Producer-Id": "p" * 257, "Producer-Epoch": "0", "Producer-Seq": "0"}, ""),
        ("POST", {"Stream-Seq": "9" * 257}, ""),
        ("GET", {}, "?offset=../etc"),
        ("GET", {}, "?offset=-1&offset=now"),
        ("GET", {}, "?live=sse"),
        ("GET", {}, "?offset=-1&live=websocket"),
    ],
)
async def test_garbage_headers_and_queries_get_a_400_json_error(
    method: str, headers: dict[str, str], query: str
) -> None:
    async with app_client(plugins=[DurableStreamsPlugin()]) as client:
        await client.put(URL, headers={"Content-Type": "text/plain"})
        response = await client.request(method, URL + query, headers=headers, content=b"x")
    assert response.status_code == 400
    assert response.json()["error"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_body_over_max_body_is_413_and_nothing_is_stored() -> None:
    settings = hub_settings(max_body_size=16)
    async with app_client(settings, plugins=[DurableStreamsPlugin()]) as client:
        await client.put(URL, headers={"Content-Type": "text/plain"})
        big = await client.post(URL, headers={"Content-Type": "text/plain"}, content=b"x" * 17)
        read = await client.get(URL)
    assert big.status_code == 413
    assert read.content == b""


async def test_an_offset_older_than_the_retained_bytes_is_410_and_a_newer_one_reads() -> None:
    settings = hub_settings(durable_max_bytes=8)
    async with app_client(settings, plugins=[DurableStreamsPlugin()]) as client:
        created = await client.put(URL, headers={"Content-Type": "text/plain"})
        first = created.headers["stream-next-offset"]
        offsets = []
        for chunk in (b"aaaa", b"bbbb", b"cccc"):
            done = await client.post(URL, headers={"Content-Type": "text/plain"}, content=chunk)
            offsets.append(done.headers["stream-next-offset"])
        old = await client.get(URL, params={"offset": first})
        kept = await client.get(URL, params={"offset": offsets[0]})
    assert old.status_code == 410
    assert old.json()["error"] == "offset_gone"
    assert kept.content == b"bbbbcccc"


async def test_offsets_sort_as_text_in_append_order() -> None:
    async with app_client(plugins=[DurableStreamsPlugin()]) as client:
        await client.put(URL, headers={"Content-Type": "application/octet-stream"})
        offsets = []
        for size in (1, 9, 10, 99, 1000):
            done = await client.post(
                URL, headers={"Content-Type": "application/octet-stream"}, content=b"\0" * size
            )
            offsets.append(done.headers["stream-next-offset"])
        read = await client.get(URL)
    assert offsets == sorted(offsets)
    assert read.content == b"\0" * 1119  # bytes stored as bytes


@pytest.mark.redis
def test_two_nodes_on_one_redis_serve_one_stream_and_a_long_poll_on_one_gets_the_others_append(
    tmp_path: Path, shared_redis_server: RedisProcess
) -> None:
    args = ("--store", shared_redis_server.url, "--no-demos", "--long-poll-timeout", "20s")
    with start_hub(args, log_dir=tmp_path) as node_a, start_hub(args, log_dir=tmp_path) as node_b:
        created = httpx.put(f"{node_a.url}{URL}-nodes", headers={"Content-Type": "text/plain"})
        tail = created.headers["stream-next-offset"]
        answer: list[httpx.Response] = []
        poll = threading.Thread(
            target=lambda: answer.append(
                httpx.get(
                    f"{node_b.url}{URL}-nodes",
                    params={"offset": tail, "live": "long-poll"},
                    timeout=30,
                )
            )
        )
        poll.start()
        again = httpx.put(f"{node_b.url}{URL}-nodes", headers={"Content-Type": "text/plain"})
        posted = httpx.post(
            f"{node_a.url}{URL}-nodes", headers={"Content-Type": "text/plain"}, content=b"hi"
        )
        poll.join(timeout=25)
    assert again.status_code == 200  # node B sees node A's stream
    assert posted.status_code == 204
    assert answer[0].status_code == 200
    assert answer[0].content == b"hi"
    assert answer[0].headers["stream-next-offset"] == posted.headers["stream-next-offset"]
