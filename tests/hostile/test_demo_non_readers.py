"""The demos' own streams cut a reader that stops reading at the hub's write deadline.

``/ticker/events``, the chat relays and the seed demo at ``/`` write their own
``EventSourceResponse``s (not hub streams).  A client that never reads its socket
used to keep such a response's write blocked forever, holding its connection and
its slot; now each is sent under ``--write-timeout`` (``GuardedResponse``) and the
connection is reset.  Waits are bounded polls; the cut is read from ``/proc``.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.polling import poll_until
from tests.support.processes import start_hub
from tests.support.procfs import sockets_left
from tests.support.raw_http import stalled_stream

KiB = 1024
#: Price events of 256 KiB, 32 of them: 8 MiB, past what the kernel buffers for a
#: client that reads nothing.
EVENT = 256 * KiB
EVENTS = 32


def test_a_ticker_reader_that_stops_reading_is_cut_at_the_write_timeout(tmp_path: Path) -> None:
    args = ["--store", "memory", "--no-ticker", "--write-timeout", "1"]
    with start_hub(args, log_dir=tmp_path) as hub:
        stalled = stalled_stream(hub.port, "/ticker/events?symbol=ZZZ", opening=b"retry:")
        with stalled, httpx.Client(timeout=10) as client:
            for index in range(EVENTS):
                data = f"{index:08d}" + "p" * (EVENT - 8)
                published = client.post(
                    f"{hub.url}/topics/ticker/ZZZ", json={"data": data, "event": "price"}
                )
                assert published.status_code == 201, published.text
            poll_until(
                lambda: hub.metric("ssehub_write_timeouts_total") >= 1,
                what="the stalled ticker reader cut",
            )
            poll_until(lambda: not sockets_left(hub.port, [stalled]), what="its socket still there")
            assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200
    assert "Traceback" not in hub.log()
