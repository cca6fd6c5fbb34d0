"""The bench's loss, duplicate, order and reset accounting, fed bytes directly (no network).

A stream of the bench engine (:mod:`ssehub.cli._bench_streams`) is given wire bytes
as a socket would; the counts it keeps become a :class:`BenchResult`.
"""

from __future__ import annotations

from ssehub.cli._bench import _verdict
from ssehub.cli._bench_load import Measurement, PublishReport
from ssehub.cli._bench_run import BenchConfig, result
from ssehub.cli._bench_streams import _Stream, _Worker

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"


def _bench_event(seq: int, sent_ns: int = 0) -> bytes:
    return b"event: bench\nid: e-%d\ndata: %d %d xxxx\n\n" % (seq, seq, sent_ns)


async def _stream(events: int) -> tuple[_Worker, _Stream]:
    worker = _Worker()
    worker.resume = True
    stream = _Stream(worker, "127.0.0.1", 1, "/topics/t", None)
    worker.streams.append(stream)
    stream.data_received(HEAD + b"retry: 3000\n\n")
    worker.arm(expected=events, latency=True)
    return worker, stream


async def test_in_order_deliveries_complete_the_subscriber_with_latencies() -> None:
    worker, stream = await _stream(3)

    stream.data_received(b"".join(_bench_event(seq, sent_ns=1_000) for seq in (1, 2, 3)))

    assert stream.done_ns > 0
    assert (stream.in_order, stream.duplicates, stream.gaps) == (3, 0, 0)
    assert len(worker.latencies) == 3
    assert stream.last_event_id == b"e-3"


async def test_repeated_events_count_as_duplicates_not_deliveries() -> None:
    _, stream = await _stream(3)

    stream.data_received(b"".join(_bench_event(seq) for seq in (1, 2, 2, 1, 3)))

    assert (stream.in_order + stream.gaps, stream.duplicates, stream.gaps) == (3, 2, 0)


async def test_a_skipped_event_is_a_gap_and_stays_lost() -> None:
    _, stream = await _stream(4)

    stream.data_received(b"".join(_bench_event(seq) for seq in (1, 3, 4)))

    assert (stream.in_order + stream.gaps, stream.gaps) == (3, 1)
    assert stream.done_ns > 0


async def test_reset_and_foreign_events_are_not_deliveries() -> None:
    _, stream = await _stream(2)

    stream.data_received(b"event: ssehub-reset\nid: x\ndata: {}\n\nevent: message\ndata: hi\n\n")

    assert (stream.delivered, stream.resets) == (0, 1)


async def test_a_line_that_never_ends_breaks_the_stream_at_the_bound() -> None:
    worker, stream = await _stream(2)
    worker.max_event = 1024

    for _ in range(10):
        stream.data_received(b"x" * 200)

    assert stream.broken
    assert len(stream.tail) <= 1024
    assert worker.errors == ["an event stream line or event over 1,024 bytes"]
    assert worker.all_complete.is_set()


def test_a_run_with_a_gap_fails_the_check_and_says_why() -> None:
    config = BenchConfig(url="http://127.0.0.1:1", subscribers=2, events=3)
    seen = Measurement(
        streams=2, delivered=5, in_order=4, out_of_order=1, gaps=1, duplicates=0, resets=0,
        reconnects=0, complete=2, last_delivery_ns=2, closed=0, latencies_ns=[1] * 5,
        client_cpu_seconds=0.0, errors=[],
    )  # fmt: skip
    published = PublishReport(3, 0, 1, 1, [], 0.0)

    outcome = result(config, seen, published, config.url)

    assert not outcome.ok
    assert (outcome.expected, outcome.delivered, outcome.lost, outcome.gaps) == (6, 5, 1, 1)
    assert _verdict(outcome) == "bench check failed: 1 deliveries lost, 1 out of order"
