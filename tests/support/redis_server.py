"""A private ``redis-server`` on a free port, for the Redis backend's tests.

Never the machine's own Redis on 6379: each server runs without persistence
(unless a test ``SAVE``s) in its own directory, and is stopped on exit.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port, wait_for_port

__all__ = ["RedisProcess", "launch_redis", "redis_or_skip", "redis_server_path", "start_redis"]


def redis_server_path() -> str | None:
    """The ``redis-server`` program, or ``None`` when it is not installed."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


@dataclass
class RedisProcess:
    proc: subprocess.Popen[bytes]
    port: int
    dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def launch_redis(port: int, workdir: Path) -> RedisProcess:
    """Start ``redis-server`` on ``port`` (no persistence) and wait until it listens."""
    exe = redis_server_path()
    if exe is None:
        raise RuntimeError("redis-server is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc=proc)
    return RedisProcess(proc=proc, port=port, dir=workdir)


@contextmanager
def start_redis(workdir: Path, port: int | None = None) -> Iterator[RedisProcess]:
    """Run a private ``redis-server`` on a free port until the block ends."""
    server = launch_redis(port or free_port(), workdir)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def redis_or_skip(workdir: Path) -> Iterator[RedisProcess]:
    """:func:`start_redis`, or skip the test when ``redis-server`` is not installed."""
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with start_redis(workdir) as server:
        yield server
