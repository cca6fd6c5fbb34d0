"""The protocol core against its peers: encoder events/s and parser MB/s.

``python -m benchmarks.bench_protocol [--events N] [--sizes 1,8,32] [--repeat N]``

Workloads, all in one process and one run:

* **encode**: an LLM-style token stream, ``event: content`` / ``id: N`` /
  ``data: {"text": ...}``, built and encoded one event at a time: ssehub's
  ``encode(ServerSentEvent(...))`` beside sse-starlette's
  ``ServerSentEvent(...).encode()``.
* **parse, token stream**: the same stream as bytes, fed in 4 KiB network
  chunks: ssehub's ``EventStreamParser.feed`` beside httpx-sse, run as its
  ``EventSource.iter_sse`` runs on a response: bytes decoded by httpx's
  incremental UTF-8 ``TextDecoder``, lines split by ``SSELineDecoder``, events
  built by ``SSEDecoder`` (the response is a stand-in that yields the chunks,
  so no HTTP cost is counted on either side).
* **parse, huge event**: one event of 1, 8 and 32 MiB of data fed in 64 KiB
  chunks, to show linear time (MB/s stays flat as the size grows).

Timing is best of ``--repeat`` runs with ``time.perf_counter``, garbage
collection off while timing (as ``timeit`` does).  Both sides must produce the
same events, or the benchmark stops.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from httpx._decoders import TextDecoder
from httpx_sse import EventSource as HttpxSSEEventSource
from rich.console import Console
from rich.table import Table
from sse_starlette import ServerSentEvent as StarletteEvent

from ssehub.protocol import EventStreamParser, ServerSentEvent, encode

T = TypeVar("T")
MIB = 1024 * 1024
TOKEN_CHUNK = 4096
HUGE_CHUNK = 64 * 1024


def best_of(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    """The shortest of ``repeat`` runs, in seconds, and the last result."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            result = run()
            best = min(best, time.perf_counter() - started)
        finally:
            gc.enable()
    return best, result


def chunked(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def token_texts(count: int) -> list[str]:
    words = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."]
    return [json.dumps({"text": words[i % len(words)]}) for i in range(count)]


# -- the contenders ------------------------------------------------------------------------


def encode_ssehub(texts: Sequence[str]) -> list[bytes]:
    return [
        encode(ServerSentEvent(data=text, event="content", id=str(i)))
        for i, text in enumerate(texts)
    ]


def encode_sse_starlette(texts: Sequence[str]) -> list[bytes]:
    return [
        StarletteEvent(data=text, event="content", id=str(i), sep="\n").encode()
        for i, text in enumerate(texts)
    ]


def parse_ssehub(chunks: Sequence[bytes]) -> list[tuple[str, str, str]]:
    parser = EventStreamParser(max_event_size=None)
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    parser.eof()
    return [(e.event, e.data, e.id) for e in events]


class _ByteResponse:
    """Just enough of ``httpx.Response`` for ``httpx_sse.EventSource``."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.headers = {"content-type": "text/event-stream"}
        self._chunks = chunks

    def iter_text(self) -> Iterator[str]:  # as httpx.Response.iter_text decodes
        decoder = TextDecoder("utf-8")
        for chunk in self._chunks:
            text = decoder.decode(chunk)
            if text:
                yield text
        text = decoder.flush()
        if text:
            yield text


def parse_httpx_sse(chunks: Sequence[bytes]) -> list[tuple[str, str, str]]:
    source = HttpxSSEEventSource(_ByteResponse(chunks))  # type: ignore[arg-type]
    events = list(source.iter_sse())
    return [(e.event, e.data, e.id) for e in events]


# -- the workloads -------------------------------------------------------------------------


def _same(ours: object, theirs: object, what: str) -> None:
    if ours != theirs:
        raise RuntimeError(f"{what}: ssehub and its peer disagree; the figures would mean nothing")


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x"


def _token_workloads(events: int, repeat: int, table: Table, figures: dict[str, float]) -> None:
    texts = token_texts(events)
    ours_s, wire = best_of(repeat, lambda: encode_ssehub(texts))
    theirs_s, their_wire = best_of(repeat, lambda: encode_sse_starlette(texts))
    _same(parse_ssehub([b"".join(wire)]), parse_ssehub([b"".join(their_wire)]), "encode")
    ours_rate, their_rate = events / ours_s, events / theirs_s
    figures.update(encode_ssehub=ours_rate, encode_sse_starlette=their_rate)
    table.add_row(
        f"encode {events:,} token events",
        f"{ours_rate / 1e3:,.0f}k events/s",
        f"{their_rate / 1e3:,.0f}k events/s (sse-starlette)",
        _ratio(ours_rate, their_rate),
    )

    stream = b"".join(wire)
    chunks = chunked(stream, TOKEN_CHUNK)
    ours_s, parsed = best_of(repeat, lambda: parse_ssehub(chunks))
    theirs_s, their_parsed = best_of(repeat, lambda: parse_httpx_sse(chunks))
    _same(parsed, their_parsed, "parse token stream")
    _same(len(parsed), events, "events parsed")
    megabytes = len(stream) / 1e6
    ours_rate, their_rate = megabytes / ours_s, megabytes / theirs_s
    figures.update(parse_tokens_ssehub=ours_rate, parse_tokens_httpx_sse=their_rate)
    table.add_row(
        f"parse the token stream ({megabytes:.1f} MB, 4 KiB chunks)",
        f"{ours_rate:,.1f} MB/s, {events / ours_s / 1e3:,.0f}k events/s",
        f"{their_rate:,.1f} MB/s, {events / theirs_s / 1e3:,.0f}k events/s (httpx-sse)",
        _ratio(ours_rate, their_rate),
    )


def _huge_workloads(
    sizes: Sequence[int], repeat: int, table: Table, figures: dict[str, float]
) -> None:
    for size in sizes:
        payload = b"x" * (size * MIB)
        stream = b"data: " + payload + b"\n\n"
        huge = chunked(stream, HUGE_CHUNK)
        ours_s, parsed = best_of(repeat, lambda huge=huge: parse_ssehub(huge))
        whole_s, whole = best_of(repeat, lambda stream=stream: parse_ssehub([stream]))
        theirs_s, their_parsed = best_of(repeat, lambda huge=huge: parse_httpx_sse(huge))
        _same(parsed, their_parsed, f"parse {size} MiB")
        _same(parsed, whole, f"parse {size} MiB whole")
        _same(len(parsed[0][1]), len(payload), "data length")
        megabytes = len(payload) / 1e6
        ours_rate, their_rate = megabytes / ours_s, megabytes / theirs_s
        figures[f"parse_{size}mib_ssehub"] = ours_rate
        figures[f"parse_{size}mib_ssehub_whole"] = megabytes / whole_s
        figures[f"parse_{size}mib_httpx_sse"] = their_rate
        table.add_row(
            f"parse one {size} MiB event",
            f"{ours_rate:,.0f} MB/s",
            f"{megabytes / whole_s:,.0f} MB/s",
            f"{ours_s / whole_s:.2f}x",
            f"{their_rate:,.0f} MB/s",
            _ratio(ours_rate, their_rate),
        )


def run(events: int, sizes: Sequence[int], repeat: int, console: Console) -> dict[str, float]:
    """Run every workload, print the tables, return the figures by name."""
    figures: dict[str, float] = {}
    tokens = Table(title=f"LLM-style token stream (best of {repeat})")
    for column in ("workload", "ssehub", "peer", "ssehub / peer"):
        tokens.add_column(column, justify="left" if column == "workload" else "right")
    _token_workloads(events, repeat, tokens, figures)
    console.print(tokens)

    huge = Table(
        title=f"Huge events, fed in {HUGE_CHUNK // 1024} KiB chunks (best of {repeat})",
        caption="time chunked / time whole stays flat as the size grows: linear time "
        "(a parser that re-copied its buffer per chunk would grow with the chunk count)",
    )
    for column in (
        "workload",
        "ssehub",
        "ssehub fed whole",
        "chunked / whole time",
        "httpx-sse",
        "ssehub / httpx-sse",
    ):
        huge.add_column(column, justify="left" if column == "workload" else "right")
    _huge_workloads(sizes, repeat, huge, figures)
    console.print(huge)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_protocol")
    parser.add_argument("--events", type=int, default=200_000, help="token events (200000)")
    parser.add_argument(
        "--sizes", default="1,8,32", help="huge event sizes in MiB, comma-separated (1,8,32)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs (5)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # a log or a pipe: don't wrap the tables at 80
    run(args.events, sizes, args.repeat, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
