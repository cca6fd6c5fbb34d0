"""The contract every history backend passes: memory, SQLite and Redis alike.

(trio's ``testing/_check_streams.py`` idea: one suite, many implementations;
the ``opened`` fixture, one test per store, is in ``tests/hub/conftest.py``.)
"""

from __future__ import annotations

import pytest

from ssehub.errors import IdempotencyConflictError, InvalidIdempotencyKeyError
from ssehub.hub._types import Retention, StoredEvent
from ssehub.hub.backends._base import event_size
from ssehub.hub.backends._idempotency import IDEMPOTENCY_WINDOW
from tests.support.clock import FakeClock
from tests.support.hubs import Opener


async def test_append_mints_increasing_seq_across_topics(opened: Opener) -> None:
    backend, _ = await opened()
    first = await backend.append("a", "1")
    second = await backend.append("b", "2")
    third = await backend.append("a", "3")
    assert first.seq < second.seq < third.seq
    assert await backend.head() == third.seq


async def test_empty_store_has_head_zero_and_a_nonempty_epoch(opened: Opener) -> None:
    backend, _ = await opened()
    assert await backend.head() == 0
    assert backend.epoch
    assert backend.epoch.isalnum()


async def test_live_feed_delivers_every_append_once_in_seq_order(opened: Opener) -> None:
    backend, recorder = await opened()
    stored = [await backend.append(f"t{i % 3}", f"d{i}") for i in range(30)]
    seen = await recorder.wait_for(30)
    assert [e.seq for e in seen] == [e.seq for e in stored]
    assert seen == stored


async def test_read_returns_the_topics_events_after_the_cursor_in_order(opened: Opener) -> None:
    backend, _ = await opened()
    a1 = await backend.append("a", "a1")
    await backend.append("b", "b1")
    a2 = await backend.append("a", "a2")
    c1 = await backend.append("c", "c1")
    result = await backend.read(["a", "c"], after=a1.seq, limit=100)
    assert [e.data for e in result.events] == ["a2", "c1"]
    assert [e.seq for e in result.events] == [a2.seq, c1.seq]
    assert not result.gap
    assert not result.more


async def test_read_honours_limit_and_says_there_is_more(opened: Opener) -> None:
    backend, _ = await opened()
    for i in range(5):
        await backend.append("a", str(i))
        await backend.append("b", str(i))
    first = await backend.read(["a", "b"], after=0, limit=4)
    assert [e.data for e in first.events] == ["0", "0", "1", "1"]
    assert first.more
    rest = await backend.read(["a", "b"], after=first.events[-1].seq, limit=100)
    assert len(rest.events) == 6
    assert not rest.more


async def test_read_of_unknown_topic_is_empty_without_gap(opened: Opener) -> None:
    backend, _ = await opened()
    await backend.append("a", "x")
    result = await backend.read(["nobody"], after=0, limit=10)
    assert result.events == []
    assert not result.gap


async def test_event_fields_survive_storage_exactly(opened: Opener) -> None:
    backend, _ = await opened()
    data = 'line one\nline two\r\n{"中文": "服务器连接成功"}\x00 end'
    stored = await backend.append("chat/42/é", data, "content")
    plain = await backend.append("chat/42/é", "", None)
    result = await backend.read(["chat/42/é"], after=0, limit=10)
    assert result.events == [stored, plain]
    assert result.events[0].data == data
    assert result.events[0].event == "content"
    assert result.events[1].event is None


async def test_count_retention_trims_oldest_and_reports_a_gap_to_old_cursors(
    opened: Opener,
) -> None:
    backend, _ = await opened(Retention(max_events=3, max_age=None))
    stored = [await backend.append("a", str(i)) for i in range(6)]
    await backend.append("b", "other topic keeps its own count")
    kept = await backend.read(["a"], after=0, limit=100)
    assert [e.data for e in kept.events] == ["3", "4", "5"]
    assert kept.gap
    recent = await backend.read(["a"], after=stored[2].seq, limit=100)
    assert [e.data for e in recent.events] == ["3", "4", "5"]
    assert not recent.gap
    other = await backend.read(["b"], after=0, limit=100)
    assert not other.gap


async def test_age_retention_prunes_events_older_than_max_age(opened: Opener) -> None:
    clock = FakeClock(1_000.0)
    backend, _ = await opened(Retention(max_events=None, max_age=100.0), clock)
    old = await backend.append("a", "old")
    clock.now = 1_080.0
    young = await backend.append("a", "young")
    removed = await backend.prune(now=1_150.0)
    assert removed == 1
    result = await backend.read(["a"], after=0, limit=10)
    assert result.events == [young]
    assert result.gap
    assert not (await backend.read(["a"], after=old.seq, limit=10)).gap


async def test_seq_is_never_reused_after_retention_removed_the_newest(opened: Opener) -> None:
    clock = FakeClock(1_000.0)
    backend, _ = await opened(Retention(max_events=None, max_age=10.0), clock)
    last = await backend.append("a", "x")
    await backend.prune(now=5_000.0)
    again = await backend.append("a", "y")
    assert again.seq > last.seq
    assert await backend.head() == again.seq


# -- reads bounded by bytes (issue 9, finding 2) -------------------------------------------------


async def test_a_byte_bounded_read_returns_the_exact_next_events_of_one_topic(
    opened: Opener,
) -> None:
    """Size is UTF-8 bytes of data + event type; the batch stays within ``max_bytes``."""
    backend, _ = await opened()
    stored = [await backend.append("a", "é" * 3, "evt") for _ in range(5)]  # 6 + 3 bytes each
    first = await backend.read(["a"], after=0, limit=100, max_bytes=20)
    assert first.events == stored[:2]
    assert first.more
    exact = await backend.read(["a"], after=stored[1].seq, limit=100, max_bytes=27)
    assert exact.events == stored[2:5]  # 27 bytes: exactly at the bound is within it
    assert not exact.more


async def test_a_byte_bounded_read_always_returns_at_least_one_event(opened: Opener) -> None:
    backend, _ = await opened()
    big = await backend.append("a", "x" * 1000)
    small = await backend.append("a", "y")
    first = await backend.read(["a"], after=0, limit=100, max_bytes=10)
    assert first.events == [big]
    assert first.more
    last = await backend.read(["a"], after=big.seq, limit=100, max_bytes=0)
    assert last.events == [small]
    assert not last.more


async def test_byte_bounded_reads_of_several_topics_walk_the_merged_history_exactly(
    opened: Opener,
) -> None:
    backend, _ = await opened()
    await backend.append("other", "not read")
    stored = [
        await backend.append(
            ("a", "b", "c")[i % 3], "d" * (1 + (i * 7) % 13), "e" if i % 2 else None
        )
        for i in range(40)
    ]
    await backend.append("other", "not read either")
    topics = ["c", "a", "b", "a"]
    walked: list[StoredEvent] = []
    after, reads = 0, 0
    while True:
        result = await backend.read(topics, after=after, limit=100, max_bytes=25)
        reads += 1
        assert result.events, "a read with events left returns at least one"
        sizes = [event_size(e.data, e.event) for e in result.events]
        assert sum(sizes) <= 25 or len(sizes) == 1
        walked += result.events
        after = result.events[-1].seq
        if not result.more:
            break
        nxt = await backend.read(topics, after=after, limit=1)
        assert sum(sizes) + event_size(nxt.events[0].data, nxt.events[0].event) > 25
    assert walked == stored
    assert reads > 10
    assert (await backend.read(topics, after=after, limit=100, max_bytes=25)).events == []


async def test_limit_still_bounds_a_byte_bounded_read(opened: Opener) -> None:
    backend, _ = await opened()
    stored = [await backend.append(f"t{i % 2}", "x") for i in range(6)]
    result = await backend.read(["t0", "t1"], after=0, limit=4, max_bytes=1_000)
    assert result.events == stored[:4]
    assert result.more


# -- per-topic state is freed, gaps stay exact (issue 9, finding 7) -------------------------------


async def test_a_forgotten_topic_still_reports_a_gap_to_cursors_before_its_removed_events(
    opened: Opener,
) -> None:
    clock = FakeClock(1_000.0)
    backend, _ = await opened(Retention(max_events=None, max_age=10.0), clock)
    before = await backend.append("kept", "old but kept alive by a young event")
    gone = [await backend.append("gone", str(i)) for i in range(3)]
    clock.now = 1_100.0
    young = await backend.append("kept", "young")
    assert await backend.prune(now=1_105.0) == 4
    stale = await backend.read(["gone"], after=before.seq, limit=10)
    assert stale.events == []
    assert stale.gap
    assert not (await backend.read(["gone"], after=gone[-1].seq, limit=10)).gap
    # A topic that kept events is judged by its own mark, not the store-wide one.
    assert not (await backend.read(["kept"], after=before.seq, limit=10)).gap
    assert (await backend.read(["kept"], after=0, limit=10)).events == [young]


async def test_a_topic_recreated_after_being_forgotten_keeps_the_gap_of_its_first_life(
    opened: Opener,
) -> None:
    clock = FakeClock(1_000.0)
    backend, _ = await opened(Retention(max_events=None, max_age=10.0), clock)
    first_life = [await backend.append("t", str(i)) for i in range(3)]
    clock.now = 1_100.0
    await backend.prune(now=1_100.0)
    second_life = await backend.append("t", "again")
    old_cursor = await backend.read(["t"], after=first_life[0].seq, limit=10)
    assert old_cursor.events == [second_life]
    assert old_cursor.gap
    recent = await backend.read(["t"], after=first_life[-1].seq, limit=10)
    assert recent.events == [second_life]
    assert not recent.gap


async def test_a_never_seen_topic_is_judged_by_the_forgotten_mark_conservatively(
    opened: Opener,
) -> None:
    clock = FakeClock(1_000.0)
    backend, _ = await opened(Retention(max_events=None, max_age=10.0), clock)
    assert not (await backend.read(["new"], after=0, limit=10)).gap
    gone = await backend.append("gone", "x")
    clock.now = 1_100.0
    await backend.prune(now=1_100.0)
    # Whether "new" ever had events is forgotten: an older cursor gets a (possibly extra) reset,
    assert (await backend.read(["new"], after=0, limit=10)).gap
    # never a cursor at or after the mark.
    assert not (await backend.read(["new"], after=gone.seq, limit=10)).gap


async def test_the_forgotten_mark_only_grows(opened: Opener) -> None:
    clock = FakeClock(1_000.0)
    backend, _ = await opened(Retention(max_events=None, max_age=10.0), clock)
    high = [await backend.append("high", str(i)) for i in range(3)]
    clock.now = 1_100.0
    await backend.prune(now=1_100.0)
    low = await backend.append("low", "x")  # created with the mark of "high"
    clock.now = 1_200.0
    await backend.prune(now=1_200.0)
    assert low.seq > high[-1].seq
    assert (await backend.read(["anything"], after=low.seq - 1, limit=10)).gap
    assert not (await backend.read(["anything"], after=low.seq, limit=10)).gap


# -- publish idempotency (issue 9, finding 9) -------------------------------------------------


async def test_a_repeated_idempotency_key_stores_one_event_and_returns_the_first(
    opened: Opener,
) -> None:
    clock = FakeClock(1_000.0)
    backend, recorder = await opened(clock=clock)
    first = await backend.append("t", "hello", "greeting", idempotency_key="order-42")
    assert not first.replayed
    clock.now = 1_060.0
    again = await backend.append("t", "hello", "greeting", idempotency_key="order-42")
    assert again == first
    assert again.replayed
    assert again.time == first.time
    other = await backend.append("t", "hello", "greeting", idempotency_key="order-43")
    assert other.seq > first.seq
    assert await backend.head() == other.seq
    assert (await backend.read(["t"], after=0, limit=10)).events == [first, other]
    sentinel = await backend.append("t", "sentinel")
    await recorder.wait_until(lambda r: sentinel in r.events)
    assert recorder.events == [first, other, sentinel]


async def test_an_idempotency_key_reused_for_another_event_is_a_conflict(opened: Opener) -> None:
    backend, _ = await opened()
    first = await backend.append("t", "hello", None, idempotency_key="k")
    for topic, data, event in [("t", "other", None), ("u", "hello", None), ("t", "hello", "x")]:
        with pytest.raises(IdempotencyConflictError, match="already used"):
            await backend.append(topic, data, event, idempotency_key="k")
    assert await backend.head() == first.seq
    assert (await backend.read(["t", "u"], after=0, limit=10)).events == [first]


@pytest.mark.parametrize("key", ["", "x" * 129, "with space", "tab\t", "é", "nul\x00", "\x7f"])
async def test_a_malformed_idempotency_key_is_refused_before_anything_is_stored(
    opened: Opener, key: str
) -> None:
    backend, _ = await opened()
    with pytest.raises(InvalidIdempotencyKeyError) as info:
        await backend.append("t", "x", idempotency_key=key)
    assert isinstance(info.value, ValueError)
    assert await backend.head() == 0
    longest = await backend.append("t", "x", idempotency_key="!~" * 64)
    assert longest.seq == 1


async def test_an_idempotency_key_is_free_again_after_the_window(
    opened: Opener, request: pytest.FixtureRequest
) -> None:
    if "redis" in request.node.callspec.id:
        pytest.skip("Redis expires keys by its own clock (TTL); see test_redis_backend.py")
    clock = FakeClock(1_000.0)
    backend, _ = await opened(clock=clock)
    first = await backend.append("t", "x", idempotency_key="k")
    clock.now = 1_000.0 + IDEMPOTENCY_WINDOW - 1
    assert (await backend.append("t", "x", idempotency_key="k")).replayed
    clock.now = 1_000.0 + IDEMPOTENCY_WINDOW + 1
    await backend.prune(now=clock.now)
    second = await backend.append("t", "other data, a new event", idempotency_key="k")
    assert second.seq > first.seq
    assert not second.replayed


async def test_the_private_flag_is_kept_on_append_read_and_the_live_feed(opened: Opener) -> None:
    """Issue 11: private events are a stored flag, on every store and its live feed."""
    backend, recorder = await opened()
    public = await backend.append("t", "public")
    private = await backend.append("t", "private", "kind", private=True)
    assert (public.private, private.private) == (False, True)
    read = await backend.read(["t"], 0, 10)
    assert [(e.data, e.private) for e in read.events] == [("public", False), ("private", True)]
    await recorder.wait_for(2)
    assert [(e.data, e.private) for e in recorder.events] == [("public", False), ("private", True)]


async def test_a_repeated_key_must_repeat_the_private_flag(opened: Opener) -> None:
    backend, _ = await opened()
    first = await backend.append("t", "x", private=True, idempotency_key="k1")
    again = await backend.append("t", "x", private=True, idempotency_key="k1")
    assert (again.seq, again.private, again.replayed) == (first.seq, True, True)
    with pytest.raises(IdempotencyConflictError):
        await backend.append("t", "x", idempotency_key="k1")
