"""Chromium's own EventSource and ssehub's parser must see the same events.

A tiny threaded ``http.server`` on a loopback port serves every stream of
``tests.support.streams.CORPUS``, writing it chunk by chunk (flushing after
each, with a short pause so the chunks tend to reach the browser apart) and
then closing the connection.  The page opens each with ``new EventSource``,
records ``{type, data, lastEventId}`` for every event type the corpus uses,
and closes the source at the first ``error`` (the end of the stream), so it
never reconnects.  The browser's list must equal the parser's.

One difference is known and kept on purpose, see ``KNOWN_DIFFERENCES``: where
Chromium departs from the standard, ssehub follows the standard, and the test
pins both behaviours so that a change in either is noticed.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.streams import BOM, CORPUS, parse_chunks, reference_parse

pytestmark = pytest.mark.browser

# name -> (chunks, what Chromium dispatches, why it differs from the standard)
KNOWN_DIFFERENCES: dict[str, tuple[list[bytes], list[tuple[str, str, str]], str]] = {
    "line_end_right_after_bom": (
        [BOM + b"\ndata: x\n\ndata: y\n\n"],
        [("message", "y", "")],
        "Chromium's EventSourceParser::AddBytes skips the CR/LF check for the byte "
        "right after a BOM ('start = i; ... continue;'), so that LF joins the next "
        "line ('\\ndata: x', an unknown field).  The standard strips the BOM, then "
        "the LF is a blank line and 'data: x' an event (seen in Chromium 156).",
    ),
    "cr_right_after_split_bom": (
        [BOM, b"\rdata: x\n\ndata: y\n\n"],
        [("message", "y", "")],
        "the same, with a CR, and the BOM in its own chunk",
    ),
}
NAMES = sorted(CORPUS)
RANDOM_STREAMS = 150
RANDOM_SEED = 20240601


def random_streams(count: int, seed: int) -> dict[str, list[bytes]]:
    """Seeded random streams of awkward lines, cut at random points."""
    rng = random.Random(seed)
    names = [b"data", b"event", b"id", b"retry", b"Data", b"", b"data ", BOM + b"data"]
    separators = [b":", b": ", b":  ", b"", b"::"]
    values = [b"", b"x", b"42", b"a\x00b", b"\xff", b"\xe2\x82", "é😀".encode(), b" sp", b"t1"]
    line_ends = [b"\n", b"\r", b"\r\n"]
    streams = {}
    while len(streams) < count:
        stream = rng.choice([b"", b"", BOM, BOM[:2], BOM + BOM])
        for _ in range(rng.randint(1, 12)):
            kind = rng.random()
            if kind < 0.6:
                stream += rng.choice(names) + rng.choice(separators) + rng.choice(values)
                stream += rng.choice(line_ends)
            elif kind < 0.85:
                stream += rng.choice(line_ends)
            else:
                stream += bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
        if stream.startswith(BOM) and stream[3:4] in (b"\r", b"\n"):
            continue  # the known difference, pinned on its own below
        cuts = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.randint(0, 4)))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        streams[f"random-{len(streams)}"] = [chunk for chunk in chunks if chunk]
    return streams


RANDOM = random_streams(RANDOM_STREAMS, RANDOM_SEED)
CHUNK_PAUSE = 0.005  # seconds between chunks; the outcome must not depend on it
PAGE_TIMEOUT_MS = 15_000

COLLECT = """
async ({url, types, timeoutMs}) => await new Promise((resolve) => {
  const events = [];
  const source = new EventSource(url);
  const record = (e) => events.push({type: e.type, data: e.data, lastEventId: e.lastEventId});
  source.onmessage = record;
  for (const type of types) source.addEventListener(type, record);
  const finish = (timedOut) => {
    clearTimeout(timer); source.close(); resolve({events, timedOut});
  };
  const timer = setTimeout(() => finish(true), timeoutMs);
  source.onerror = () => finish(false);
})
"""


class _StreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def do_GET(self) -> None:
        if self.path == "/":
            body = b"<!doctype html><title>differential</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        name = self.path.removeprefix("/streams/")
        chunks = CORPUS.get(name) or RANDOM.get(name) or KNOWN_DIFFERENCES.get(name, ([],))[0]
        if not chunks:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()
        for chunk in chunks:
            self.wfile.write(chunk)
            self.wfile.flush()
            time.sleep(CHUNK_PAUSE)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stream_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StreamHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _event_types(streams: dict[str, list[bytes]] = CORPUS) -> list[str]:
    """Every event type that any of ``streams`` could name, but ``message``."""
    types: set[str] = set()
    field = re.compile(r"^\ufeff?event:? ?(.*)$", re.MULTILINE)
    for chunks in streams.values():
        text = b"".join(chunks).decode("utf-8", "replace")
        types.update(field.findall(text.replace("\r\n", "\n").replace("\r", "\n")))
        types.update(t for t, _, _ in parse_chunks(chunks).events)
    types.discard("message")
    types.discard("")
    return sorted(types)


def test_the_corpus_names_event_types_to_listen_for() -> None:
    assert {"custom", "événement", "my event", "tok", "e"} <= set(_event_types())


def _mismatches(page: Any, streams: dict[str, list[bytes]]) -> dict[str, Any]:
    types = _event_types(streams)
    mismatches = {}
    for name, chunks in sorted(streams.items()):
        result = page.evaluate(
            COLLECT,
            {"url": f"/streams/{name}", "types": types, "timeoutMs": PAGE_TIMEOUT_MS},
        )
        assert not result["timedOut"], f"{name}: the stream never ended in the browser"
        browser = [(e["type"], e["data"], e["lastEventId"]) for e in result["events"]]
        ours = parse_chunks(chunks).events
        if browser != ours:
            mismatches[name] = {"stream": chunks, "chromium": browser, "ssehub": ours}
    return mismatches


def test_chromium_eventsource_sees_what_our_parser_sees(page: Any, stream_server: str) -> None:
    page.goto(stream_server + "/")
    assert _mismatches(page, CORPUS) == {}


def test_chromium_agrees_on_seeded_random_streams(page: Any, stream_server: str) -> None:
    assert len(RANDOM) == RANDOM_STREAMS
    page.goto(stream_server + "/")
    assert _mismatches(page, RANDOM) == {}


def test_known_differences_from_chromium_stay_as_documented(page: Any, stream_server: str) -> None:
    """ssehub follows the standard where Chromium does not; both are pinned here."""
    page.goto(stream_server + "/")
    for name, (chunks, chromium, why) in KNOWN_DIFFERENCES.items():
        result = page.evaluate(
            COLLECT, {"url": f"/streams/{name}", "types": [], "timeoutMs": 15_000}
        )
        assert not result["timedOut"], name
        browser = [(e["type"], e["data"], e["lastEventId"]) for e in result["events"]]
        assert browser == chromium, f"{name}: Chromium changed; revisit: {why}"
        ours = parse_chunks(chunks)
        assert ours == reference_parse(b"".join(chunks)), name
        assert ours.events != chromium, name
