"""A finished request leaves nothing for the garbage collector.

Every object a request made must be freed by reference counting when the request
ends.  A reference cycle per request (the scope's ``ssehub.abort`` extension once
held the request cycle, which holds the scope) leaves ~15 objects per publish
for the cyclic collector, whose collections then cost the publish path about a
sixth of its CPU.  The hub runs here under uvicorn with ssehub's own HTTP
protocol, in this process, so ``gc.collect()`` sees what it leaves behind.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from ssehub.server import HubApp, Settings
from ssehub.server._http import ConnectionGate, HttpLimits, bounded_protocol
from tests.support.raw_http import connect, read_answer
from tests.support.servers import serve_in_thread

REQUESTS = 300


@pytest.fixture
def port() -> Iterator[int]:
    app = HubApp(Settings(store="memory"))
    protocol = bounded_protocol(ConnectionGate(HttpLimits()))
    with serve_in_thread(app, http=protocol) as url:
        yield urlsplit(url).port or 80


def _garbage_after(port: int, requests: list[bytes]) -> int:
    """Send ``requests`` one after another on one connection; the cyclic garbage they left."""
    with connect(port) as sock:
        sock.sendall(requests[0])
        assert read_answer(sock).status < 300  # warm: the first request sets things up
        gc.collect()
        gc.disable()
        try:
            for raw in requests[1:]:
                sock.sendall(raw)
                answer = read_answer(sock)
                assert answer.status < 300, answer.body
            return gc.collect()
        finally:
            gc.enable()


def _publish(i: int) -> bytes:
    body = json.dumps({"data": f"event {i}"}).encode()
    return (
        b"POST /topics/garbage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )


def test_publishes_leave_no_reference_cycles(port: int) -> None:
    found = _garbage_after(port, [_publish(i) for i in range(REQUESTS + 1)])
    assert found < REQUESTS // 10, f"{found} objects in cycles after {REQUESTS} publishes"


def test_plain_gets_leave_no_reference_cycles(port: int) -> None:
    get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    found = _garbage_after(port, [get] * (REQUESTS + 1))
    assert found < REQUESTS // 10, f"{found} objects in cycles after {REQUESTS} requests"
