"""Non-reading clients during fan-out lose their sockets, not the hub's (issue 9, finding 3).

Twenty clients subscribe, read the opening block, then never read again while
a topic fans out megabytes.  The hub abandons them (write deadline or slow
queue); each connection must then really be gone — reset, no ESTABLISHED
socket with a full Send-Q left on the hub's port — and stop counting against
``--max-connections``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.polling import poll_until
from tests.support.processes import HubProcess, start_hub
from tests.support.procfs import rss_bytes, sockets_left
from tests.support.raw_http import stalled_stream
from tests.support.sse import open_stream

MiB = 1024 * 1024
NON_READERS = 20


def _abandoned(hub: HubProcess) -> float:
    return hub.metric("ssehub_write_timeouts_total") + hub.metric(
        "ssehub_slow_subscriber_closes_total"
    )


def test_abandoned_non_readers_are_reset_and_free_their_connection_slots(tmp_path: Path) -> None:
    args = ["--store", "memory", "--no-ticker", "--write-timeout", "1",
            "--max-queue-bytes", str(256 * MiB), "--max-queue", "100000",
            "--max-connections", "30", "--retention-events", "50"]  # fmt: skip
    payload = "z" * 64 * 1024
    with start_hub(args, log_dir=tmp_path) as hub, open_stream(f"{hub.url}/topics/t") as reader:
        reader.read_until(b"retry: 3000")
        stalled = [stalled_stream(hub.port) for _ in range(NON_READERS)]
        base = rss_bytes(hub.proc.pid)
        published = 0
        stop = threading.Event()

        def keep_reading() -> int:
            while not stop.is_set():
                reader.read_events(len(reader.events) + 1, timeout=30)
            return len(reader.events)

        with ThreadPoolExecutor(1) as pool:
            reading = pool.submit(keep_reading)
            while _abandoned(hub) < NON_READERS:
                assert published < 600, "the non-readers were never abandoned"
                httpx.post(f"{hub.url}/topics/t", content=payload, timeout=10)
                published += 1
            # Each abandoned connection is reset within a second of the decision:
            # no socket left on the hub's side, whatever its Send-Q held.
            poll_until(
                lambda: not sockets_left(hub.port, stalled), what="abandoned sockets still there"
            )
            assert rss_bytes(hub.proc.pid) - base < 32 * MiB
            # Their slots are free: 20 new streams fit under --max-connections 30.
            fresh = [stalled_stream(hub.port) for _ in range(NON_READERS)]
            for sock in fresh + stalled:
                sock.close()
            stop.set()
            httpx.post(f"{hub.url}/topics/t", content="last", timeout=10)
            assert reading.result() == published + 1  # the reader got every event
    assert "ERROR" not in hub.log()
