"""The contract every history backend passes: memory, SQLite and Redis alike.

(trio's ``testing/_check_streams.py`` idea: one suite, many implementations.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ssehub.hub._types import Retention
from ssehub.hub.backends import Backend
from tests.support.clock import FakeClock
from tests.support.hubs import StoreKind
from tests.support.hubs import make_backend as kit_make_backend
from tests.support.recorder import Recorder

BackendFactory = Callable[[Retention, Callable[[], float]], Backend]


Opener = Callable[..., Awaitable[tuple[Backend, "Recorder"]]]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> BackendFactory:
    kind: StoreKind = request.param
    counter = iter(range(1_000_000))
    redis_url = None
    if kind == "redis":
        redis_url = request.getfixturevalue("shared_redis_server").url

    def factory(retention: Retention, clock: Callable[[], float]) -> Backend:
        n = next(counter)
        return kit_make_backend(
            kind,
            retention=retention,
            clock=clock,
            path=tmp_path / f"hub-{n}.db",
            redis_url=redis_url,
            prefix=f"contract{id(factory)}-{n}",
        )

    return factory


@pytest.fixture
async def opened(make_backend: BackendFactory) -> AsyncIterator[Opener]:
    started: list[Backend] = []

    async def open_one(
        retention: Retention | None = None, clock: Callable[[], float] | None = None
    ) -> tuple[Backend, Recorder]:
        backend = make_backend(
            retention or Retention(max_events=None, max_age=None), clock or FakeClock()
        )
        recorder = Recorder()
        await backend.start(recorder)
        started.append(backend)
        return backend, recorder

    yield open_one
    for backend in started:
        await backend.aclose()


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
