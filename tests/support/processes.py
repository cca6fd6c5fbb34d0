"""Start real servers (the hub, redis-server) as subprocesses on free ports.

Every helper here waits for readiness by polling the server itself (a TCP
connect or ``/healthz``), with a bounded deadline, never by sleeping a fixed
time.  Processes are always terminated, then killed, on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["HubProcess", "free_port", "start_hub", "start_redis", "wait_for_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, *, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until something accepts TCP connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


@dataclass
class HubProcess:
    """A running ``ssehub serve`` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    args: list[str] = field(default_factory=list)
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

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
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ssehub serve exited with {proc.returncode}:\n{hub.log()}")
            try:
                if httpx.get(f"{hub.url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"ssehub serve not healthy within {timeout} s:\n{hub.log()}")
            time.sleep(0.05)
        yield hub
    finally:
        hub.terminate(timeout=10)


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
