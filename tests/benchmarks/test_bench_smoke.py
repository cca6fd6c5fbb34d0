"""The hub benchmarks' load client, at tiny sizes, against real servers.

These check the measuring machinery, not speed: every subscriber of a real server
(a peer app, and ``ssehub serve``) must see every published event exactly once and
in order, and the stream reader must count events the same however the bytes are cut.
No timing is asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks._servers import ServerSpec, hub_spec, peer_spec, start_server

from benchmarks import _scenarios
from ssehub.cli._bench_load import LoadClient
from ssehub.cli._bench_streams import _Stream, _Worker

SUBSCRIBERS = 20
EVENTS = 5


@pytest.fixture(scope="module")
def load() -> Iterator[LoadClient]:
    with LoadClient(procs=1) as client:
        yield client


@pytest.fixture(params=["aiohttp-sse", "ssehub"])
def spec(request: pytest.FixtureRequest) -> ServerSpec:
    if request.param == "ssehub":
        return hub_spec()  # never skipped: a hub that can't start is what this should catch
    return peer_spec(request.param)


def test_fanout_delivers_every_event_to_every_subscriber_in_order(
    spec: ServerSpec, load: LoadClient, tmp_path: Path
) -> None:
    with start_server(spec, tmp_path) as server:
        result = _scenarios.fanout(server, load, SUBSCRIBERS, EVENTS, timeout=60)
    assert result["opened"] == SUBSCRIBERS
    assert result["published"] == EVENTS
    assert result["delivered"] == SUBSCRIBERS * EVENTS
    assert result["out_of_order"] == 0
    assert result["missing"] == 0
    assert result["complete_subscribers"] == SUBSCRIBERS
    assert result["zero_loss"], result["errors"]


def test_latency_counts_one_latency_per_delivery(
    spec: ServerSpec, load: LoadClient, tmp_path: Path
) -> None:
    with start_server(spec, tmp_path) as server:
        result = _scenarios.latency(server, load, SUBSCRIBERS, rate=50, seconds=0.1, drain=60)
    assert result["delivered"] == SUBSCRIBERS * result["events"]
    assert result["zero_loss"], result["errors"]
    assert result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]


def test_idle_streams_stay_open_and_the_server_is_weighed(load: LoadClient, tmp_path: Path) -> None:
    with start_server(peer_spec("aiohttp-sse"), tmp_path) as server:
        result = _scenarios.idle(server, load, SUBSCRIBERS, hold=0)
    assert result["held"] == SUBSCRIBERS
    assert result["rss_held_mb"] > 0


def _chunked(*events: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
WIRE = HEAD + _chunked(
    b"retry: 3000\r\n\r\n",
    b"id: 1\r\nevent: tick\r\ndata: 1 100\r\n\r\n",
    b": ping\r\n\r\nid: 2\nevent: tick\ndata: 2 200\n\nid: 3\ndata: 3 300\n\n",
    b"id: 4\r\ndata: 4 400\r\n\r\n",
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(WIRE)])
async def test_stream_reader_counts_the_same_however_the_bytes_are_cut(size: int) -> None:
    worker = _Worker()
    stream = _Stream(worker, "127.0.0.1", 1, "/", None)
    worker.streams.append(stream)
    worker.arm(expected=4, latency=True)
    for start in range(0, len(WIRE), size):
        stream.data_received(WIRE[start : start + size])
    assert stream.ready.done()
    assert (stream.delivered, stream.in_order, stream.lasts) == (4, 4, [4])
    assert len(worker.latencies) == 4
    assert stream.done_ns > 0


async def test_stream_reader_counts_a_gap_as_out_of_order() -> None:
    worker = _Worker()
    stream = _Stream(worker, "127.0.0.1", 1, "/", None)
    worker.streams.append(stream)
    worker.arm(expected=3, latency=False)
    stream.data_received(HEAD + _chunked(b"retry: 1\n\n", b"data: 1 0\n\n", b"data: 3 0\n\n"))
    assert (stream.delivered, stream.in_order) == (2, 1)


async def test_stream_reader_checks_order_within_each_publishers_lane() -> None:
    worker = _Worker()
    stream = _Stream(worker, "127.0.0.1", 1, "/", None)
    worker.streams.append(stream)
    worker.arm(expected=5, latency=False, lanes=2)  # lane 0: 1, 3, 5; lane 1: 2, 4
    events = [b"data: %d 0\n\n" % n for n in (2, 1, 3, 4, 5)]
    stream.data_received(HEAD + _chunked(b"retry: 1\n\n", *events))
    assert (stream.delivered, stream.in_order, stream.lasts) == (5, 5, [5, 4])
    assert stream.done_ns > 0


def test_fanout_from_several_publishers_delivers_every_event(
    load: LoadClient, tmp_path: Path
) -> None:
    with start_server(peer_spec("aiohttp-sse"), tmp_path) as server:
        result = _scenarios.fanout(server, load, SUBSCRIBERS, 7, timeout=60, publishers=3)
    assert result["delivered"] == SUBSCRIBERS * 7
    assert result["zero_loss"], result["errors"]


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "h1-tls"])
def test_bench_h2_counts_every_delivery_over_https(
    http2: bool, tls_files: tuple[str, str], tmp_path: Path
) -> None:
    """``bench_h2``'s load client sees every event on every stream, over HTTP/2 or HTTP/1.1."""
    import asyncio
    import dataclasses

    from benchmarks.bench_h2 import measure

    cert, key = tls_files
    spec = dataclasses.replace(hub_spec(["--certfile", cert, "--keyfile", key]), tls=True)
    with start_server(spec, tmp_path) as server:
        result = asyncio.run(
            measure(server, http2, streams=12, events=3, per_connection=5, settle=0)
        )
    assert result["delivered"] == 36
    assert result["missing"] == 0
    assert result["errors"] == []


def test_the_mcp_benchmark_runs_every_store_and_checks_its_replays() -> None:
    """Issue 16: tiny sizes; ``main`` stops with an error if a replay loses a message."""
    from benchmarks import bench_mcp

    assert bench_mcp.main(["--sessions", "2", "--events", "5", "--repeat", "1"]) == 0
