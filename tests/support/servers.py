"""Run an ASGI app under a real uvicorn on a free loopback port.

``serve_in_thread`` runs an app object in this process (httpx's
``serve_in_thread`` idea); ``serve_in_process`` runs ``module:attr`` with
``python -m uvicorn`` in a subprocess, for apps that install signal handlers or
must be killed.  Both wait until uvicorn accepts connections (bounded) and
stop it when the block ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from tests.support.polling import poll_until
from tests.support.ports import free_port, wait_for_port

__all__ = ["UvicornProcess", "serve_in_process", "serve_in_thread", "start_uvicorn"]

#: The repository root: ``tests.*`` modules import from here.
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serve_in_thread(app: Any, *, graceful_timeout: float = 2, **options: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yield its base URL.

    ``options`` go to ``uvicorn.Config`` (e.g. ``http=`` a protocol class).
    """
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=graceful_timeout,
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "uvicorn stopped before it started"
        return bool(server.started)

    poll_until(started, "uvicorn to start", interval=0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@dataclass(frozen=True, slots=True)
class UvicornProcess:
    """A ``python -m uvicorn APP`` subprocess and its base URL."""

    url: str
    proc: subprocess.Popen[bytes]


@contextmanager
def start_uvicorn(
    app: str,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[UvicornProcess]:
    """Run ``python -m uvicorn APP`` on a free port until the block ends.

    The output goes to ``log_path``; the process is terminated (then killed)
    when the block ends, unless the test ended it already.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    try:
        wait_for_port(port, proc=proc)
        yield UvicornProcess(f"http://127.0.0.1:{port}", proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def serve_in_process(
    app: str,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[str]:
    """Run ``python -m uvicorn APP`` on a free port; yield its base URL."""
    with start_uvicorn(app, log_path=log_path, env=env, cwd=cwd) as server:
        yield server.url
