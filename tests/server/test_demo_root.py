"""``GET /``: the seed's demo stream ends in a way that well-behaved clients understand.

Issue 10: ``ssehub listen localhost:8004`` (its own help example) replayed the
demo forever, and so does a browser's ``EventSource``.  The last event carries
``id: seed-end``; a reconnect with that ``Last-Event-ID`` gets ``204 No
Content``, on which an ``EventSource`` (WHATWG) and ``ssehub listen`` stop.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssehub.demos._root import SEED_END_ID, SEED_EVENTS
from ssehub.protocol import EventStreamParser
from tests.support.cli import run_cli
from tests.support.processes import HubProcess, start_hub


@pytest.fixture(scope="module")
def fast_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    args = ["--store", "memory", "--no-ticker", "--demo-interval", "0.01"]
    with start_hub(args, log_dir=tmp_path_factory.mktemp("root")) as proc:
        yield proc


def _raw_get(hub: HubProcess, headers: str = "") -> bytes:
    """One HTTP/1.1 request on a bare socket; everything until the server closes (bounded)."""
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{headers}"
    request += "Connection: close\r\n\r\n"
    deadline = time.monotonic() + 15
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            assert time.monotonic() < deadline, "the server did not end the response"
    return data


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return out
        out, body = out + rest[:n], rest[n + 2 :]
    return out


def test_the_last_demo_event_carries_the_end_id(fast_hub: HubProcess) -> None:
    head, _, body = _raw_get(fast_hub).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    events = EventStreamParser().feed(_dechunk(body))
    assert [e.event for e in events] == [name for name, _ in SEED_EVENTS]
    assert [json.loads(e.data) for e in events] == [data for _, data in SEED_EVENTS]
    # only the last event sets an id: a client that lost the stream earlier starts over
    assert [e.id for e in events] == [""] * (len(SEED_EVENTS) - 1) + [SEED_END_ID]


def test_a_reconnect_after_the_end_gets_204_no_content(fast_hub: HubProcess) -> None:
    answer = _raw_get(fast_hub, f"Last-Event-ID: {SEED_END_ID}\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 204")
    assert body == b""
    assert b"text/event-stream" not in head


@pytest.mark.parametrize("last_event_id", ["", "something-else"])
def test_any_other_last_event_id_replays_the_demo(fast_hub: HubProcess, last_event_id: str) -> None:
    head, _, body = _raw_get(fast_hub, f"Last-Event-ID: {last_event_id}\r\n").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(EventStreamParser().feed(_dechunk(body))) == len(SEED_EVENTS)


def test_ssehub_listen_on_the_root_prints_the_demo_once_and_exits(
    fast_hub: HubProcess, tmp_path: Path
) -> None:
    url = fast_hub.url.removeprefix("http://")  # as in its help: ssehub listen localhost:8004
    result = run_cli("listen", url, "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == [name for name, _ in SEED_EVENTS]
