"""Slow, stalled and departing clients, and a graceful shutdown, against a real hub."""

from __future__ import annotations

import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from ssehub.protocol import EventStreamParser
from tests.support.polling import poll_until
from tests.support.processes import HubProcess, start_hub
from tests.support.sse import open_stream


def wait_for_metric(hub: HubProcess, name: str, at_least: float, timeout: float = 60.0) -> None:
    poll_until(lambda: hub.metric(name) >= at_least, f"{name} >= {at_least}", timeout)


class StalledClient:
    """A real TCP client that sends a request, reads the opening block, then stops reading."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        self.received = b""
        while b"retry: 3000" not in self.received:
            self.received += self.sock.recv(4096)

    def drain_to_eof(self, timeout: float = 30.0) -> bytes:
        """Read everything the server sent until it closed (or reset) the connection.

        A stream the hub abandons (slow, write deadline) is reset: what was
        already in this socket's receive buffer is read, then the reset ends it.
        """
        self.sock.settimeout(timeout)
        try:
            while chunk := self.sock.recv(65536):
                self.received += chunk
        except ConnectionResetError:
            pass
        self.sock.close()
        return self.received


def decode_chunked_events(raw: bytes) -> list[tuple[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"chunked" in head.lower()
    payload, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0 or len(rest) < size:
            payload += rest[:size]
            break
        payload += rest[:size]
        rest = rest[size + 2 :]
    parser = EventStreamParser()
    return [(e.data, e.id) for e in parser.feed(payload)]


def cursor_of(raw: bytes) -> str:
    """The ``Last-Event-ID`` a browser would send after reading ``raw`` (a chunked stream)."""
    rest = raw.partition(b"\r\n\r\n")[2]
    parser = EventStreamParser()
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        parser.feed(rest[:size])
        if size == 0 or len(rest) < size:
            break
        rest = rest[size + 2 :]
    return parser.last_event_id


def test_a_client_that_stops_reading_is_closed_and_resumes_with_nothing_lost(
    tmp_path: Path,
) -> None:
    """The slow one can't hold the others back or grow the hub; history covers its gap."""
    args = ["--store", "memory", "--no-ticker", "--max-queue", "50", "--write-timeout", "600"]
    payload = "x" * 32 * 1024
    with start_hub(args, log_dir=tmp_path) as hub, open_stream(f"{hub.url}/topics/t") as fast:
        fast.read_until(b"retry: 3000")
        stalled = StalledClient(hub.port, "/topics/t")
        with ThreadPoolExecutor(1) as pool:
            fast_events = pool.submit(fast.read_events, 400, 120)
            ids = []
            for i in range(400):  # 12.8 MB: far more than the socket buffers hold
                answer = httpx.post(f"{hub.url}/topics/t", content=f"{i}:{payload}", timeout=10)
                ids.append(answer.json()["id"])
            # The fast one got everything, in order.
            assert [e.id for e in fast_events.result()] == ids
        wait_for_metric(hub, "ssehub_slow_subscriber_closes_total", 1)
        # It is reset: it keeps what reached its own receive buffer, maybe no event at all.
        raw = stalled.drain_to_eof()
        got = decode_chunked_events(raw)
        assert len(got) < 400
        assert [event_id for _, event_id in got] == ids[: len(got)]
        with open_stream(f"{hub.url}/topics/t", headers={"Last-Event-ID": cursor_of(raw)}) as again:
            rest = again.read_events(400 - len(got))
        assert [e.id for e in rest] == ids[len(got) :]
        assert hub.metric("ssehub_open_streams") == 1  # only the fast one


def test_a_write_blocked_past_the_deadline_releases_the_stream(tmp_path: Path) -> None:
    args = ["--store", "memory", "--no-ticker", "--write-timeout", "1",
            "--max-queue", "1000000", "--max-queue-bytes", str(1 << 30)]  # fmt: skip
    with start_hub(args, log_dir=tmp_path) as hub:
        stalled = StalledClient(hub.port, "/topics/t")
        payload = "y" * 64 * 1024

        def released() -> bool:
            if hub.metric("ssehub_write_timeouts_total") >= 1:
                return True
            httpx.post(f"{hub.url}/topics/t", content=payload, timeout=10)
            return False

        poll_until(released, "the blocked write to be released", timeout=60, interval=0)
        stalled.drain_to_eof()
        assert hub.metric("ssehub_open_streams") == 0
        assert "Traceback" not in hub.log()
        assert "ASGI callable returned without completing" not in hub.log()


def test_a_client_that_disconnects_is_forgotten_at_once(hub: HubProcess) -> None:
    with open_stream(f"{hub.url}/topics/t") as reader:
        reader.read_until(b"retry: 3000")
        assert hub.metric("ssehub_open_streams") == 1
    poll_until(lambda: hub.metric("ssehub_open_streams") == 0, "the stream to be forgotten")


def test_sigterm_ends_every_stream_with_a_jittered_retry_and_exits_cleanly(
    tmp_path: Path,
) -> None:
    with start_hub(["--store", "memory", "--no-ticker"], log_dir=tmp_path) as hub:
        readers = []
        contexts = [open_stream(f"{hub.url}/topics/t{i}") for i in range(12)]
        for context in contexts:
            reader = context.__enter__()
            reader.read_until(b"retry: 3000")
            readers.append(reader)
        hub.proc.send_signal(signal.SIGTERM)
        retries = []
        for reader, context in zip(readers, contexts, strict=True):
            reader.read_to_end(timeout=20)
            retries.append(reader.parser.retry)
            context.__exit__(None, None, None)
        # uvicorn re-raises the captured signal after its clean shutdown.
        assert hub.proc.wait(timeout=20) in (0, -signal.SIGTERM)
        log = hub.log()
    assert all(r is not None and 1000 <= r <= 10_000 for r in retries)
    assert len(set(retries)) > 6, "every client would come back at the same moment"
    assert "Traceback" not in log
    assert "draining: told 12 streams" in log
