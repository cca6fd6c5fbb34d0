"""Servers under test: one or more subprocesses on free loopback ports.

A *server under test* is a list of nodes (processes) serving the same topics.  The load
client spreads subscribers round-robin over :attr:`RunningServer.endpoints` and sends
every publish to the first one.  Memory and CPU figures are summed over every node and
its child processes (psutil), so a multi-node hub is charged for all of it.

Every server starts through :func:`raise_nofile` (a ``preexec_fn``) so it may hold tens
of thousands of sockets, and is ready once ``GET /healthz`` answers ``200``.
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from ssehub.cli._bench_streams import raise_nofile

__all__ = [
    "HUB_VARIANTS",
    "PEERS",
    "SYSTEM_PEERS",
    "RedisServer",
    "RunningServer",
    "ServerSpec",
    "free_port",
    "hub_spec",
    "hub_variant_spec",
    "peer_spec",
    "redis_server",
    "start_server",
    "wait_listening",
]

#: The peer apps, by the name the tables use, with the module that runs each.
PEERS = {
    "sse-starlette": "benchmarks.peers.sse_starlette_app",
    "aiohttp-sse": "benchmarks.peers.aiohttp_sse_app",
}

#: Peers that need system packages (nginx + Nchan): run only when named in ``--servers``.
#: Name -> the module and its arguments.
SYSTEM_PEERS = {
    "nchan": ("benchmarks.peers.nchan_app", "--workers", "1"),
    "nchan-2w": ("benchmarks.peers.nchan_app", "--workers", "2"),
}


#: ssehub on the default SQLite store (a fresh file per start), by the name the tables use.
#: Name -> extra ``ssehub serve`` arguments.
HUB_VARIANTS = {
    "ssehub-sqlite": (),
    "ssehub-sqlite-2w": ("--workers", "2"),
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server under test: ``argv(port, node_index)`` per node."""

    name: str
    argv: Callable[[int, int], list[str]]
    nodes: int = 1
    description: str = ""
    #: Processes that serve with it (a shared Redis): weighed and timed with it.
    companions: tuple[int, ...] = ()
    #: Publish plain-text bodies (``?event=``) instead of JSON (servers that can't parse it).
    text_publish: bool = False
    #: Serves HTTPS (with a throwaway certificate: not verified by the benchmarks).
    tls: bool = False


def peer_spec(name: str) -> ServerSpec:
    """The spec of a peer app from :data:`PEERS` or :data:`SYSTEM_PEERS`."""
    if name in SYSTEM_PEERS:
        module, *args = SYSTEM_PEERS[name]
        return ServerSpec(
            name=name,
            argv=lambda port, _node: [sys.executable, "-m", module, "--port", str(port), *args],
            description=f"{module} {' '.join(args)} (nginx + Nchan, text publishes)",
            text_publish=True,
        )
    module = PEERS[name]
    return ServerSpec(
        name=name,
        argv=lambda port, _node: [sys.executable, "-m", module, "--port", str(port)],
        description=module,
    )


def hub_spec(
    hub_args: Sequence[str] = (),
    nodes: int = 1,
    store: str | None = None,
    companions: tuple[int, ...] = (),
) -> ServerSpec:
    """``python -m ssehub serve`` on ``nodes`` processes sharing ``store``.

    ``--store memory`` is added unless ``store`` or ``hub_args`` name one; several nodes
    need a shared store (``redis://…``), since each memory store is private.
    ``companions`` are the pids of processes the nodes need (the Redis server).
    """
    extra = list(hub_args)
    if store is not None:
        extra = ["--store", store, *extra]
    elif "--store" not in extra:
        extra = ["--store", "memory", *extra]
    name = "ssehub" if nodes == 1 else f"ssehub×{nodes}"
    return ServerSpec(
        name=name,
        argv=lambda port, _node: [
            sys.executable,
            "-m",
            "ssehub",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ],
        nodes=nodes,
        description="ssehub serve " + " ".join(extra),
        companions=companions,
    )


def hub_variant_spec(name: str, hub_args: Sequence[str], data_dir: Path) -> ServerSpec:
    """A :data:`HUB_VARIANTS` hub: SQLite in ``data_dir``, one fresh file per start (port)."""
    extra = [*HUB_VARIANTS[name], *hub_args]

    def argv(port: int, _node: int) -> list[str]:
        store = f"sqlite:{data_dir / f'{name}-{port}.db'}"
        return [sys.executable, "-m", "ssehub", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--store", store, *extra]  # fmt: skip

    return ServerSpec(
        name=name, argv=argv, description="ssehub serve --store sqlite:… " + " ".join(extra)
    )


@dataclass
class RunningServer:
    """The live nodes of one server under test."""

    name: str
    procs: list[subprocess.Popen[bytes]]
    ports: list[int]
    log_paths: list[Path] = field(default_factory=list)
    companions: tuple[int, ...] = ()
    text_publish: bool = False
    tls: bool = False

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.ports]

    @property
    def publish_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.ports[0]}"

    def _tree(self) -> list[psutil.Process]:
        found: list[psutil.Process] = []
        for pid in [proc.pid for proc in self.procs] + list(self.companions):
            try:
                root = psutil.Process(pid)
                found.append(root)
                found.extend(root.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        return found

    def rss(self) -> int:
        """Resident memory of every node and its children, in bytes."""
        total = 0
        for proc in self._tree():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds used so far by every node and its children."""
        total = 0.0
        for proc in self._tree():
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def dead(self) -> list[str]:
        """A line per node that has exited, with the tail of its log."""
        lines = []
        for proc, log in zip(self.procs, self.log_paths, strict=False):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                lines.append(f"{self.name} pid {proc.pid} exited with {proc.returncode}\n{tail}")
        return lines

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{url}: server exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0, verify=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}: not healthy within {timeout} s")
        time.sleep(0.05)


@contextmanager
def start_server(spec: ServerSpec, log_dir: Path, timeout: float = 30.0) -> Iterator[RunningServer]:
    """Run every node of ``spec`` until the block ends; logs go to ``log_dir``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parent.parent)  # so ``-m benchmarks.peers…`` imports
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    server = RunningServer(
        name=spec.name,
        procs=[],
        ports=[],
        companions=spec.companions,
        text_publish=spec.text_publish,
        tls=spec.tls,
    )
    try:
        for node in range(spec.nodes):
            port = free_port()
            log_path = log_dir / f"{spec.name.replace('×', 'x')}-{port}.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    spec.argv(port, node),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    preexec_fn=raise_nofile,
                )
            server.procs.append(proc)
            server.ports.append(port)
            server.log_paths.append(log_path)
        scheme = "https" if spec.tls else "http"
        for proc, port, log_path in zip(server.procs, server.ports, server.log_paths, strict=True):
            _wait_healthy(f"{scheme}://127.0.0.1:{port}", proc, log_path, timeout)
        yield server
    finally:
        server.stop()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    """Return once ``port`` accepts; ``RuntimeError`` if ``proc`` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on {port}") from None
            time.sleep(0.02)


@dataclass(frozen=True)
class RedisServer:
    url: str
    pid: int


@contextmanager
def redis_server(log_dir: Path, timeout: float = 20.0) -> Iterator[RedisServer]:
    """A private ``redis-server`` (no persistence) on a free port."""
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(exe).exists():
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    workdir = log_dir / f"redis-{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--maxclients", "20000", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=raise_nofile,
        )  # fmt: skip
        stack.callback(_stop, proc)
        wait_listening(port, proc, timeout, "redis-server")
        yield RedisServer(f"redis://127.0.0.1:{port}/0", proc.pid)
