"""Store quotas: distinct topics and stored bytes, on every store (issue 11, quotas).

A refusal stores nothing (no ``seq`` minted, nothing on the live feed); the
count is the store's, so it holds for every process on one SQLite file and
every node on one Redis; retention freeing space lets publishing resume.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from ssehub.errors import QuotaExceededError
from ssehub.hub import Retention
from ssehub.hub.backends import Backend
from ssehub.hub.backends.memory import MemoryBackend
from ssehub.hub.backends.sqlite import SQLiteBackend
from tests.support.clock import FakeClock
from tests.support.hubs import Opener, StoreKind, make_backend
from tests.support.recorder import Recorder

_PREFIXES = itertools.count()


def _quotas(**bounds: int | float | None) -> Retention:
    return Retention(**{"max_events": None, "max_age": None, **bounds})  # type: ignore[arg-type]


async def test_a_new_topic_past_the_topic_quota_is_refused_and_nothing_is_stored(
    opened: Opener,
) -> None:
    backend, recorder = await opened(_quotas(max_topics=2))
    await backend.append("a", "1")
    await backend.append("b", "2")
    head = await backend.head()
    with pytest.raises(QuotaExceededError) as refused:
        await backend.append("c", "3")
    assert refused.value.kind == "topics"
    assert "2 topics" in str(refused.value)
    assert await backend.head() == head
    assert (await backend.read(["c"], after=0, limit=10)).events == []
    # Publishers of topics that exist keep being served.
    more = await backend.append("a", "4")
    seen = await recorder.wait_for(3)
    assert [e.data for e in seen] == ["1", "2", "4"]
    assert more.seq > head


async def test_a_publish_past_the_byte_quota_is_refused_until_age_retention_frees_space(
    opened: Opener,
) -> None:
    clock = FakeClock(1_000.0)
    backend, recorder = await opened(_quotas(max_age=10.0, max_bytes=10), clock)
    await backend.append("a", "中中", "ev")  # 6 + 2 bytes: UTF-8, data and type
    await backend.append("b", "xy")  # 10 bytes held: exactly the quota
    head = await backend.head()
    with pytest.raises(QuotaExceededError) as refused:
        await backend.append("a", "z")
    assert refused.value.kind == "bytes"
    assert await backend.head() == head
    assert [e.data for e in (await backend.read(["a", "b"], after=0, limit=10)).events] == [
        "中中",
        "xy",
    ]
    clock.advance(11.0)
    assert await backend.prune(clock()) == 2
    await backend.append("a", "z" * 10)
    seen = await recorder.wait_for(3)
    assert [e.data for e in seen] == ["中中", "xy", "z" * 10]


async def test_a_topic_rolling_at_its_count_bound_keeps_publishing_when_the_store_is_full(
    opened: Opener,
) -> None:
    """An append that pushes out its topic's oldest event is credited that event's bytes."""
    backend, _ = await opened(_quotas(max_events=2, max_bytes=6))
    for data in ("aaa", "bbb", "ccc", "ddd"):
        await backend.append("t", data)
    assert [e.data for e in (await backend.read(["t"], after=0, limit=10)).events] == [
        "ccc",
        "ddd",
    ]
    with pytest.raises(QuotaExceededError):
        await backend.append("t", "eeee")  # pushes out 3 bytes, adds 4: one over
    with pytest.raises(QuotaExceededError):
        await backend.append("u", "e")  # a new topic pushes nothing out
    await backend.append("t", "fff")


async def test_a_topic_forgotten_by_retention_frees_its_place_in_the_topic_quota(
    opened: Opener,
) -> None:
    clock = FakeClock(1_000.0)
    backend, _ = await opened(_quotas(max_age=10.0, max_topics=1), clock)
    await backend.append("a", "1")
    with pytest.raises(QuotaExceededError):
        await backend.append("b", "2")
    clock.advance(11.0)
    await backend.prune(clock())
    await backend.append("b", "2")


async def test_a_repeated_idempotency_key_is_answered_even_when_the_store_is_full(
    opened: Opener,
) -> None:
    backend, _ = await opened(_quotas(max_bytes=3))
    first = await backend.append("a", "abc", idempotency_key="k1")
    again = await backend.append("a", "abc", idempotency_key="k1")
    assert again.replayed
    assert again.seq == first.seq


@pytest.fixture(params=["sqlite", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Retention], Backend]:
    """Backends of one shared store: one SQLite file, or one Redis key prefix."""
    kind: StoreKind = request.param
    redis_url = request.getfixturevalue("shared_redis_server").url if kind == "redis" else None
    prefix = f"quota-{next(_PREFIXES)}"

    def one(retention: Retention) -> Backend:
        return make_backend(
            kind, retention=retention, path=tmp_path / "hub.db", redis_url=redis_url, prefix=prefix
        )

    return one


@pytest.fixture
async def two_processes(
    shared_store: Callable[[Retention], Backend],
) -> AsyncIterator[tuple[Backend, Backend]]:
    """Two backends on one store (as two processes or two nodes hold it)."""
    quotas = _quotas(max_topics=2, max_bytes=8)
    async with AsyncExitStack() as stack:
        pair = []
        for _ in range(2):
            backend = shared_store(quotas)
            await backend.start(Recorder())
            stack.push_async_callback(backend.aclose)
            pair.append(backend)
        yield pair[0], pair[1]


async def test_the_quotas_count_every_process_sharing_the_store(
    two_processes: tuple[Backend, Backend],
) -> None:
    one, other = two_processes
    await one.append("a", "1234")
    await other.append("b", "1234")
    for backend in (one, other):
        with pytest.raises(QuotaExceededError) as topics:
            await backend.append("c", "")
        assert topics.value.kind == "topics"
        with pytest.raises(QuotaExceededError) as stored:
            await backend.append("a", "5")
        assert stored.value.kind == "bytes"


async def test_an_sqlite_file_from_before_quotas_counts_the_bytes_it_holds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    backend = make_backend("sqlite", path=path)
    await backend.start(Recorder())
    await backend.append("a", "12345")
    await backend.aclose()
    with sqlite3.connect(path) as db:  # as a file written before quotas
        db.execute("DELETE FROM meta WHERE key = 'stored_bytes'")
    reopened = make_backend("sqlite", path=path, retention=_quotas(max_bytes=6))
    await reopened.start(Recorder())
    try:
        await reopened.append("a", "6")
        with pytest.raises(QuotaExceededError):
            await reopened.append("a", "7")
    finally:
        await reopened.aclose()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_idempotency_records_are_bounded_in_count_oldest_forgotten_first(
    kind: str, tmp_path: Path
) -> None:
    """A fresh key on every publish can't grow the store for the 24 h window."""
    backend: Backend = (
        MemoryBackend(max_idempotency_keys=3)
        if kind == "memory"
        else SQLiteBackend(tmp_path / "hub.db", max_idempotency_keys=3)
    )
    await backend.start(Recorder())
    try:
        for n in range(1, 6):
            await backend.append("t", "x", idempotency_key=f"k{n}")
        assert (await backend.append("t", "x", idempotency_key="k5")).replayed
        assert not (await backend.append("t", "x", idempotency_key="k1")).replayed
    finally:
        await backend.aclose()
