"""An idle stream costs the hub at most ``BOUND_KIB`` of resident memory (issue 12).

Issue 12's goal is RSS per idle stream at or below Nchan's (10.0 KB in the
issue's run); ``ssehub serve`` measured about 8.5 KiB per stream here.  The
test opens ``BATCH`` streams, weighs the hub (``VmRSS`` from ``/proc``), opens
``BATCH`` more and divides the growth by ``BATCH``: the first batch pays for
what every process grows once (caches, the first arenas), the second only for
the streams.  Each stream sends what a browser's ``EventSource`` sends,
cookie included, so a hub that kept every request's headers for the stream's
life would be over the bound.
"""

from __future__ import annotations

import socket
from contextlib import ExitStack
from pathlib import Path

from tests.support.processes import HubProcess, start_hub
from tests.support.procfs import rss_bytes
from tests.support.raw_http import connect

KiB = 1024
#: ssehub serve measured ~8.5 KiB per idle stream; the bound leaves ~15 % for noise.
BOUND_KIB = 10.0
BATCH = 1500
#: Opened and then read in groups of this many: a bounded number of requests in flight.
GROUP = 100

_COOKIE = "session=" + "c" * 400 + "; ssehub_access_token=" + "t" * 200
BROWSER_REQUEST = (
    "GET /topics/idle HTTP/1.1\r\n"
    "Host: 127.0.0.1\r\n"
    "Connection: keep-alive\r\n"
    "Accept: text/event-stream\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-GB,en;q=0.9,fr;q=0.8\r\n"
    "Referer: http://127.0.0.1/dashboard\r\n"
    f"Cookie: {_COOKIE}\r\n\r\n"
).encode()


def _read_opening(sock: socket.socket) -> None:
    """Read the response head and the opening block (``retry: 3000``); bounded by count."""
    data = b""
    for _ in range(64):
        if b"retry: 3000" in data:
            assert data.startswith(b"HTTP/1.1 200"), data[:200]
            return
        chunk = sock.recv(4096)
        assert chunk, f"closed before the opening block: {data[:200]!r}"
        data += chunk
    raise AssertionError(f"no opening block in {data[:200]!r}")


def _open_streams(hub: HubProcess, count: int, stack: ExitStack) -> None:
    for start in range(0, count, GROUP):
        group = [stack.enter_context(connect(hub.port)) for _ in range(min(GROUP, count - start))]
        for sock in group:
            sock.sendall(BROWSER_REQUEST)
        for sock in group:
            _read_opening(sock)


def test_an_idle_stream_costs_the_hub_under_the_rss_bound(tmp_path: Path) -> None:
    with (
        start_hub(["--store", "memory", "--no-demos"], log_dir=tmp_path) as hub,
        ExitStack() as stack,
    ):
        _open_streams(hub, BATCH, stack)
        first = rss_bytes(hub.proc.pid)
        _open_streams(hub, BATCH, stack)
        second = rss_bytes(hub.proc.pid)
    per_stream_kib = (second - first) / BATCH / KiB
    print(f"RSS per idle stream: {per_stream_kib:.2f} KiB")
    assert per_stream_kib < BOUND_KIB, f"{per_stream_kib:.2f} KiB per idle stream"
