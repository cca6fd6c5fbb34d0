"""The bench's loss, duplicate and order accounting, fed events directly (no network)."""

from __future__ import annotations

from ssehub.cli._bench import _verdict
from ssehub.cli._bench_run import BenchConfig, _Run, _Subscriber
from ssehub.protocol import Event


def _bench_event(seq: int, sent_ns: int = 0) -> Event:
    return Event(data=f"{seq} {sent_ns} xxxx", event="bench", id=f"e-{seq}")


def _subscriber(events: int) -> _Subscriber:
    return _Subscriber("http://127.0.0.1:1/topics/t", events, clock_ns=lambda: 0)


async def test_in_order_deliveries_complete_the_subscriber_with_latencies() -> None:
    sub = _subscriber(3)

    for seq in (1, 2, 3):
        sub._on_event(_bench_event(seq, sent_ns=1_000), now_ns=3_000)

    assert sub.complete.is_set()
    assert (sub.delivered, sub.duplicates, sub.gaps) == (3, 0, 0)
    assert list(sub.latencies_ns) == [2_000, 2_000, 2_000]


async def test_repeated_events_count_as_duplicates_not_deliveries() -> None:
    sub = _subscriber(3)

    for seq in (1, 2, 2, 1, 3):
        sub._on_event(_bench_event(seq), now_ns=0)

    assert (sub.delivered, sub.duplicates, sub.gaps) == (3, 2, 0)


async def test_a_skipped_event_is_a_gap_and_stays_lost() -> None:
    sub = _subscriber(4)

    for seq in (1, 3, 4):
        sub._on_event(_bench_event(seq), now_ns=0)

    assert (sub.delivered, sub.gaps) == (3, 1)
    assert sub.complete.is_set()


async def test_reset_and_foreign_events_are_not_deliveries() -> None:
    sub = _subscriber(2)

    sub._on_event(Event(data="{}", event="ssehub-reset", id="x"), now_ns=0)
    sub._on_event(Event(data="hello", event="message", id="y"), now_ns=0)

    assert (sub.delivered, sub.resets) == (0, 1)


async def test_a_run_with_a_gap_fails_the_check_and_says_why() -> None:
    run = _Run(BenchConfig(url="http://127.0.0.1:1", subscribers=2, events=3), clock_ns=lambda: 0)
    run.published = 3
    for seq in (1, 2, 3):
        run.subscribers[0]._on_event(_bench_event(seq), now_ns=0)
    for seq in (1, 3):
        run.subscribers[1]._on_event(_bench_event(seq), now_ns=0)

    result = run.result([])

    assert not result.ok
    assert (result.expected, result.delivered, result.lost, result.gaps) == (6, 5, 1, 1)
    assert _verdict(result) == "bench check failed: 1 deliveries lost, 1 out of order"
