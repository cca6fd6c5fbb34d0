"""SIGTERM with a client that stopped reading: a prompt, quiet drain (issue 9, finding 16).

While the hub drains it keeps accepting and answers every new request (a
stream or ``/healthz``) ``503 shutting_down`` (JSON) instead of refusing them at TCP; a stream that
cannot take its final ``retry:`` is dropped at the end of ``--drain-timeout``,
so the hub exits without waiting for uvicorn's graceful timeout or logging an
error.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.support.polling import poll_until
from tests.support.processes import start_hub
from tests.support.procfs import sockets_left, tcp_sockets
from tests.support.raw_http import request, stalled_stream


def test_sigterm_with_a_non_reading_client_drains_with_503s_and_exits_without_error(
    tmp_path: Path,
) -> None:
    args = ["--store", "memory", "--no-ticker", "--drain-timeout", "3", "--write-timeout", "600",
            "--max-queue-bytes", str(64 << 20), "--max-queue", "100000"]  # fmt: skip
    with start_hub(args, log_dir=tmp_path) as hub:
        stalled = stalled_stream(hub.port)
        port = stalled.getsockname()[1]
        payload = "q" * 64 * 1024
        for _ in range(200):  # until the hub's side holds bytes the client will never read
            httpx.post(f"{hub.url}/topics/t", content=payload, timeout=10)
            held = [s for s in tcp_sockets(hub.port) if s.remote_port == port and s.send_queue]
            if held:
                break
        assert held, "the stalled stream never filled its socket"
        hub.proc.send_signal(signal.SIGTERM)
        answers = []
        while hub.proc.poll() is None and len(answers) < 20:
            try:
                path = b"/healthz" if len(answers) % 2 else b"/topics/t"
                answers.append(
                    request(hub.port, b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path)
                )
            except OSError:
                break  # the drain is over: the listener is closed
        assert len(answers) >= 2, "the hub stopped accepting as the drain began"
        assert all(a.status == 503 for a in answers)
        assert all(a.json()["error"] == "shutting_down" for a in answers)
        assert all(a.headers.get("retry-after") for a in answers)
        assert hub.proc.wait(timeout=20) in (0, -signal.SIGTERM)
        poll_until(
            lambda: not sockets_left(hub.port, [stalled]),
            what=f"socket {sockets_left(hub.port, [stalled])}",
        )
        stalled.close()
    log = hub.log()
    assert "drain: dropped 1 connections" in log
    assert "ERROR" not in log
    assert "Traceback" not in log
