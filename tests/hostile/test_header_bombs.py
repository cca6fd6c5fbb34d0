"""Header bombs get a JSON 431 and cannot grow the hub (issue 9, finding 4)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.processes import HubProcess, start_hub
from tests.support.procfs import rss_bytes
from tests.support.raw_http import Answer, connect, read_answer, request

MiB = 1024 * 1024


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    with start_hub(["--store", "memory", "--no-ticker"], log_dir=tmp_path) as proc:
        yield proc


def test_a_header_line_over_the_limit_gets_a_json_431(hub: HubProcess) -> None:
    line = b"X-Big: " + b"a" * (70 * 1024)  # over the default 64 KiB, unterminated
    answer = request(hub.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + line)
    assert answer.status == 431
    assert answer.json()["error"] == "headers_too_large"
    assert answer.headers["connection"] == "close"


def test_more_header_fields_than_the_limit_get_a_json_431(hub: HubProcess) -> None:
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(101))
    answer = request(hub.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\n")
    assert answer.status == 431
    assert answer.json() == {"error": "too_many_headers", "message": "more than 100 header fields"}


def test_garbage_gets_a_json_400(hub: HubProcess) -> None:
    answer = request(hub.port, b"\x00\x01GARBAGE /\r\n\r\n")
    assert answer.status == 400
    assert answer.json()["error"] == "bad_request"


def test_pipelined_requests_are_answered_in_order(hub: HubProcess) -> None:
    first = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    second = b"GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with connect(hub.port) as sock:
        sock.sendall(first + second)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)  # a body has no line end of its own
    assert statuses == [b"200", b"404"]


def _bomb(port: int, head: bytes, filler: bytes, total: int) -> tuple[int, Answer | None]:
    """Send ``head`` then ``filler`` up to ``total`` bytes; return bytes sent and any answer."""
    sock = connect(port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sent = 0
    try:
        sock.sendall(head)
        while sent < total:
            sent += sock.send(filler)
    except OSError:
        pass  # the hub closed the connection: that is the point
    try:
        return sent, read_answer(sock)
    except OSError:
        return sent, None  # reset before we read the answer
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("head", "filler"),
    [
        pytest.param(b"GET / HTTP/1.1\r\nX-Big: ", b"a" * 65536, id="six-unterminated-headers"),
        pytest.param(b"GET / HTTP/1.1\r\n", b"a: b\r\n" * 10923, id="500k-fields-each"),
    ],
)
def test_header_bombs_are_cut_off_and_the_hub_does_not_grow(
    hub: HubProcess, head: bytes, filler: bytes
) -> None:
    """Six connections each try to send 16 MiB of headers at once.

    The hub closes each after its 64 KiB head limit: the bombs stop early and
    the hub's RSS stays within a few MiB of where it was.
    """
    httpx.get(f"{hub.url}/healthz", timeout=10)
    base = rss_bytes(hub.proc.pid)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: _bomb(hub.port, head, filler, 16 * MiB), range(6)))
    for sent, answer in results:
        assert sent < 16 * MiB, "a bomb was taken whole"
        assert answer is None or answer.status == 431
    assert any(answer is not None for _, answer in results), "no bomb was answered 431"
    assert rss_bytes(hub.proc.pid) - base < 16 * MiB
    assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200
