"""Fixtures shared by every suite; the helpers behind them live in :mod:`tests.support`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from tests.support.processes import HubProcess, start_hub
from tests.support.redis_server import RedisProcess, redis_or_skip


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A real ``ssehub serve`` subprocess: free port, in-memory store, 1 s heartbeats, no ticker."""
    args = ["--store", "memory", "--heartbeat", "1", "--no-ticker"]
    with start_hub(args, log_dir=tmp_path) as proc:
        yield proc


@pytest.fixture
def clock() -> FakeClock:
    """A clock at t = 1000 s that moves only when the test moves it."""
    return FakeClock()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """This test's own ``redis-server``: it may stop, kill or relaunch it."""
    with redis_or_skip(tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def shared_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One ``redis-server`` per module: tests use their own key prefix and never stop it."""
    with redis_or_skip(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """``(certfile, keyfile)``: a self-signed localhost certificate, as ``--dev-cert`` makes."""
    from ssehub.server import dev_certificate

    cert, key = dev_certificate(tmp_path_factory.mktemp("tls"))
    return str(cert), str(key)
