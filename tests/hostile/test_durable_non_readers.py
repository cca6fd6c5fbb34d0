"""Durable Streams readers that stop reading are cut at the write deadline, not held forever.

A ``/v1/stream/{name}?live=sse`` reader (or a long-poll whose answer is
stuck) that never reads its socket used to hold its connection, its slot
under ``--max-connections`` and its pending chunk until it left on its own.
Its writes now run under the hub's ``--write-timeout`` like the hub's own
streams: past it the connection is reset (``ssehub serve``) or, under a
server without the ``ssehub.abort`` extension, the response is cancelled and
its slot freed.  Bounds are read from ``/proc``; waits are bounded polls.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from ssehub.durable import DurableStreamsPlugin
from ssehub.hub import HubConfig
from ssehub.protocol import EventStreamParser
from ssehub.server import HubApp, ServerSettings
from ssehub.server._admission import streams_open
from tests.support.h2client import H2Client
from tests.support.polling import poll_until
from tests.support.processes import start_hub
from tests.support.procfs import rss_bytes, socket_count, sockets_left
from tests.support.raw_http import connect, stalled_stream
from tests.support.servers import serve_in_thread
from tests.support.sse import StreamReader, open_stream

KiB = 1024
MiB = 1024 * KiB
NON_READERS = 10
CHUNK = 256 * KiB
#: Appends (8 MiB): more than the kernel's send buffer (4 MiB at most) holds for a
#: client that reads nothing, so each non-reader's write blocks.
APPENDS = 32


def _chunk(index: int) -> bytes:
    """A distinct text chunk of :data:`CHUNK` bytes (no newlines, so SSE keeps it whole)."""
    return f"{index:08d}".encode() + b"z" * (CHUNK - 8)


def _create(base: str, name: str) -> str:
    url = f"{base}/v1/stream/{name}"
    created = httpx.put(url, headers={"Content-Type": "text/plain"}, timeout=10, verify=False)
    assert created.status_code == 201, created.text
    return url


def _append(url: str, body: bytes) -> None:
    answer = httpx.post(
        url, content=body, headers={"Content-Type": "text/plain"}, timeout=10, verify=False
    )
    assert answer.status_code in (200, 204), answer.text


def _stalled_sse(port: int, path: str) -> socket.socket:
    """A ``live=sse`` reader that read its opening control event and will read nothing more."""
    return stalled_stream(port, f"{path}?offset=now&live=sse", opening=b"event: control")


def _data_of(reader: StreamReader) -> bytes:
    return "".join(e.data for e in reader.events if e.event == "data").encode()


def _read_while(reader: StreamReader, stop: threading.Event) -> bytes:
    """Read ``data`` events until ``stop`` is set and nothing more is expected."""
    while not stop.is_set():
        reader.read_events(len(reader.events) + 1, timeout=30)
    return _data_of(reader)


def test_durable_sse_non_readers_are_reset_at_the_write_timeout_while_readers_get_everything(
    tmp_path: Path,
) -> None:
    args = ["--store", f"sqlite:{tmp_path / 'hub.db'}", "--no-demos", "--write-timeout", "1",
            "--max-connections", str(NON_READERS + 5)]  # fmt: skip
    with start_hub(args, log_dir=tmp_path) as hub:
        url = _create(hub.url, "chat/1")
        path = "/v1/stream/chat/1"
        with open_stream(f"{url}?offset=now&live=sse", read_timeout=30) as reader:
            reader.read_until(b"event: control")
            sockets_before = socket_count(hub.proc.pid)
            stalled = [_stalled_sse(hub.port, path) for _ in range(NON_READERS)]
            base = rss_bytes(hub.proc.pid)
            sent = b""
            stop = threading.Event()
            with ThreadPoolExecutor(1) as pool:
                reading = pool.submit(_read_while, reader, stop)
                for index in range(APPENDS):
                    body = _chunk(index)
                    _append(url, body)
                    sent += body
                poll_until(
                    lambda: hub.metric("ssehub_write_timeouts_total") >= NON_READERS,
                    what="every non-reader cut",
                )
                # Each cut connection is reset: nothing left on the hub's side, whatever
                # its Send-Q held, and the process holds no more sockets than before.
                poll_until(
                    lambda: not sockets_left(hub.port, stalled), what="cut sockets still there"
                )
                poll_until(
                    lambda: socket_count(hub.proc.pid) <= sockets_before,
                    what="the hub's socket count back where it was",
                )
                # While stuck, each holds one read step (at most 1 MiB) as it was sent, and
                # the transport's copy of what the kernel did not take — not the 8 MiB
                # appended meanwhile (12 to 19 MiB measured for the ten here).
                growth = rss_bytes(hub.proc.pid) - base
                bound = 4 * MiB + NON_READERS * 5 * MiB // 2
                assert growth < bound, f"RSS grew {growth / MiB:.1f} MiB"
                # Their slots are free: as many new durable streams fit under the limit.
                fresh = [_stalled_sse(hub.port, path) for _ in range(NON_READERS)]
                for sock in fresh + stalled:
                    sock.close()
                # The reader got every byte, in order, meanwhile.
                poll_until(lambda: len(_data_of(reader)) >= len(sent), what="the reader's data")
                stop.set()
                _append(url, b"!")
                assert reading.result() == sent + b"!"
    assert "ERROR" not in hub.log()
    assert "Traceback" not in hub.log()


def test_a_long_poll_answer_stuck_in_a_full_socket_is_reset_at_the_write_timeout(
    tmp_path: Path,
) -> None:
    """Pipelined long-polls whose 1 MiB answers the client never reads: more than the
    kernel's send buffer (4 MiB at most) takes, so an answer's write blocks."""
    args = ["--store", "memory", "--no-demos", "--write-timeout", "1"]
    with start_hub(args, log_dir=tmp_path) as hub:
        url = _create(hub.url, "run/1")
        path = "/v1/stream/run/1"
        for index in range(8):
            _append(url, _chunk(index))
        sock = connect(hub.port, receive_buffer=4096)
        with sock:
            request = f"GET {path}?offset=-1&live=long-poll HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            sock.sendall(request.encode() * 8)
            poll_until(
                lambda: hub.metric("ssehub_write_timeouts_total") >= 1,
                what="the long-poll's write abandoned",
            )
            poll_until(lambda: not sockets_left(hub.port, [sock]), what="the socket reset")
    assert "ERROR" not in hub.log()


def test_a_stuck_http2_durable_reader_is_reset_alone_and_its_neighbour_gets_everything(
    tls_files: tuple[str, str], tmp_path: Path
) -> None:
    """Over HTTPS + HTTP/2 the cut is an ``RST_STREAM CANCEL`` of that stream only."""
    cert, key = tls_files
    args = ["--store", "memory", "--no-demos", "--certfile", cert, "--keyfile", key,
            "--write-timeout", "1"]  # fmt: skip
    with start_hub(args, log_dir=tmp_path) as hub, H2Client(hub.port) as client:
        url = _create(hub.url, "h2")
        path = "/v1/stream/h2?offset=now&live=sse"
        slow, fast = client.get(path), client.get(path)
        client.pump_until(
            lambda: all(b"event: control" in client.streams[i].body for i in (slow, fast)),
            "both streams' opening control event",
        )
        client.stall(slow)
        sent = b""
        for index in range(16):  # 1 MiB: far past the stalled stream's 64 KiB window
            body = _chunk(index)[: 64 * KiB]
            _append(url, body)
            sent += body
            client.pump_until(
                lambda n=index + 1: client.streams[fast].body.count(b"event: data") >= n,
                "the reading stream to keep up",
            )
        client.pump_until(
            lambda: client.streams[slow].reset_code is not None, "the stuck stream's reset"
        )
        assert client.streams[slow].reset_code == 8  # CANCEL
        assert not client.terminated

        def received() -> bytes:
            events = EventStreamParser().feed(bytes(client.streams[fast].body))
            return "".join(e.data for e in events if e.event == "data").encode()

        client.pump_until(lambda: len(received()) >= len(sent), "the rest of the data")
        assert received() == sent
    assert "Traceback" not in hub.log()


def _in_process_app() -> HubApp:
    settings = ServerSettings(store="memory", max_connections=1, hub=HubConfig(write_timeout=1.0))
    return HubApp(settings, plugins=[DurableStreamsPlugin()], install_signal_handlers=False)


def _status(base: str, path: str) -> int:
    port = int(base.rsplit(":", 1)[1])
    with connect(port) as sock:
        sock.sendall(
            f"GET {path}?offset=now&live=sse HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Accept: application/json\r\n\r\n".encode()
        )
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            assert chunk, "closed before a status line"
            received += chunk
        return int(received.split()[1])


def test_under_plain_uvicorn_a_durable_non_reader_is_cancelled_and_frees_its_slot() -> None:
    """No ``ssehub.abort`` extension: the response's task is cancelled instead of a reset."""
    app = _in_process_app()
    with serve_in_thread(app) as base:
        port = int(base.rsplit(":", 1)[1])
        url = _create(base, "solo")
        stalled = _stalled_sse(port, "/v1/stream/solo")
        with stalled:
            hub = app.hub
            assert streams_open(hub) == 1
            # At --max-connections 1 the non-reader's slot is taken.
            assert _status(base, "/v1/stream/solo") == 503
            for index in range(APPENDS):
                _append(url, _chunk(index))
            poll_until(lambda: hub.stats.write_timeouts >= 1, what="the non-reader cut")
            poll_until(lambda: streams_open(hub) == 0, what="the non-reader's slot freed")
            # The slot is free while the non-reader is still connected.
            assert _status(base, "/v1/stream/solo") == 200
