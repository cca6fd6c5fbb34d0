"""A throwaway hub for ``ssehub bench --spawn``: ``python -m ssehub serve`` on a free port.

The hub runs in its own session (Ctrl+C in the terminal reaches only
``ssehub bench``, which then stops it), logs to a temporary file (its last
line is shown if it fails to start), and is ready once ``/healthz`` answers
200, polled for at most ``timeout`` seconds.  On exit it gets SIGTERM, then
SIGKILL after 10 s.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

import httpx

from ._bench_run import BenchError

__all__ = ["spawned_hub"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _last_line(log: IO[bytes]) -> str:
    log.seek(0)
    lines = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


@contextmanager
def spawned_hub(args: Sequence[str] = (), *, timeout: float = 30.0) -> Iterator[str]:
    """Run a hub with ``serve --host 127.0.0.1 --port P *args``; yield its base URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
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
    with tempfile.NamedTemporaryFile(prefix="ssehub-bench-", suffix=".log") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise BenchError(
                        f"the spawned hub exited with {proc.returncode}: {_last_line(log)}"
                    )
                try:
                    if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"the spawned hub was not ready within {timeout:g}s")
                time.sleep(0.05)
            yield url
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
