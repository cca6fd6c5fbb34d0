"""Clients that resume from far back and never read (issue 9, finding 2).

Before: replay steps were bounded by count (500), not bytes, and each step was
handed whole to uvicorn's buffer — 300 × 1 MB of history and one such client
took the hub from 44 MB to 913 MB.  Now a step is about ``--max-queue-bytes``
and the next is read only when the client took the previous one.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.support.processes import start_hub
from tests.support.procfs import rss_bytes

EVENT = "x" * 1_000_000
EVENTS = 120
MiB = 1024 * 1024


def test_non_reading_resumers_cost_about_one_replay_step_each(tmp_path: Path) -> None:
    args = ["--store", f"sqlite:{tmp_path / 'hub.db'}", "--max-body", "1100000"]
    with start_hub(args, log_dir=tmp_path) as hub, httpx.Client(timeout=30) as client:
        first = client.post(f"{hub.url}/topics/big", content=b"start").json()["id"]
        for _ in range(EVENTS):
            assert client.post(f"{hub.url}/topics/big", content=EVENT).status_code == 201
        base = rss_bytes(hub.proc.pid)
        stalled = []
        for _ in range(4):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", hub.port))
            sock.sendall(
                f"GET /topics/big?last_event_id={first} HTTP/1.1\r\n"
                "Host: 127.0.0.1\r\n\r\n".encode()
            )
            sock.recv(1024)  # the response has started: the replay is under way
            stalled.append(sock)
        # The hub keeps serving others meanwhile.
        assert client.post(f"{hub.url}/topics/other", content=b"ok").status_code == 201
        assert client.get(f"{hub.url}/healthz").json()["open_streams"] == 4
        grown = rss_bytes(hub.proc.pid) - base
        for sock in stalled:
            sock.close()
    # Four clients that resumed 120 MB back hold about one 4 MiB step each (and
    # what the kernel took), not the 120 MB of history each.
    assert grown < 40 * MiB, f"RSS grew by {grown / MiB:.0f} MiB"
