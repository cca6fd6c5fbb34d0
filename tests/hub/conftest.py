"""Fixtures of the hub tests: ``opened`` starts backends of each store (memory, SQLite, Redis).

A test taking ``opened`` runs once per store; each backend it opens gets a
file (SQLite) or a key prefix (Redis) of its own, and is closed after the test.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ssehub.hub._types import Retention
from ssehub.hub.backends import Backend
from tests.support.clock import FakeClock
from tests.support.hubs import Opener, StoreKind
from tests.support.hubs import make_backend as kit_make_backend
from tests.support.recorder import Recorder

BackendFactory = Callable[[Retention, Callable[[], float]], Backend]

_REDIS_PREFIXES = itertools.count()


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
            prefix=f"contract-{next(_REDIS_PREFIXES)}",
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
