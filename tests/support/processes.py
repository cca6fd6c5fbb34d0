"""Start ``ssehub serve`` as a subprocess on a free port, and wait until it is healthy.

Readiness is polled from the server itself (``/healthz``) with a bounded
deadline, never by sleeping a fixed time.  Processes are always terminated,
then killed, on exit.  (``free_port``/``wait_for_port`` live in
:mod:`tests.support.ports`, ``redis-server`` in :mod:`tests.support.redis_server`;
both are re-exported here for older imports.)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.polling import poll_until
from tests.support.ports import free_port, wait_for_port
from tests.support.redis_server import (
    RedisProcess,
    launch_redis,
    redis_server_path,
    start_redis,
)

__all__ = [
    "HubProcess",
    "RedisProcess",
    "free_port",
    "launch_redis",
    "redis_server_path",
    "start_hub",
    "start_redis",
    "wait_for_port",
]


@dataclass
class HubProcess:
    """A running ``ssehub serve`` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    args: list[str] = field(default_factory=list)
    log_path: Path | None = None

    @property
    def tls(self) -> bool:
        """Whether it serves HTTPS (``--certfile`` or ``--dev-cert``)."""
        return "--certfile" in self.args or "--dev-cert" in self.args

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def metric(self, name: str) -> float:
        """The value of the unlabelled sample ``name`` on the hub's ``/metrics``."""
        text = httpx.get(f"{self.url}/metrics", timeout=10, verify=False).text
        match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
        assert match, f"{name} not in metrics"
        return float(match.group(1))

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit; kill after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


def _healthy(hub: HubProcess) -> bool:
    """``/healthz`` answers 200; an exited process fails the wait at once, with its log."""
    if hub.proc.poll() is not None:
        raise AssertionError(f"ssehub serve exited with {hub.proc.returncode}:\n{hub.log()}")
    try:
        answer = httpx.get(f"{hub.url}/healthz", timeout=1.0, verify=not hub.tls)
        return answer.status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def start_hub(
    args: Sequence[str] = ("--store", "memory"),
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    timeout: float = 30.0,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[HubProcess]:
    """Run ``python -m ssehub serve --port P *args`` until the block ends.

    ``preexec_fn`` runs in the child before ``exec`` (e.g. to lower a ``setrlimit``).
    """
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "ssehub",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"ssehub-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, preexec_fn=preexec_fn
        )
    hub = HubProcess(proc=proc, port=port, args=list(args), log_path=log_path)
    try:
        poll_until(lambda: _healthy(hub), "ssehub serve to be healthy", timeout, interval=0.05)
        yield hub
    finally:
        hub.terminate(timeout=10)
