"""The Mercure adapter's cost: ``/.well-known/mercure`` beside the hub's own topic API.

``python -m benchmarks.bench_mercure [--streams N] [--events N] [--repeat N]``

For each of the two endpoints, in one run, a fresh ``ssehub serve --store
memory --no-demos`` on a free port (the two run side by side and their
publish rounds alternate, so both see the same machine load):

* **RSS per stream**: the server's resident memory (``/proc/PID/status``)
  after ``--streams`` streams opened (each read until its opening block),
  minus before, divided by the streams.
* **deliveries/s**: one publisher (keep-alive, one request after the other)
  sends ``--events`` events; every stream must receive all of them; rate =
  streams x events / (first publish -> last event received).  Best of
  ``--repeat``.

Topic API: ``GET /topics/bench``, ``POST /topics/bench`` (JSON).  Mercure:
``GET /.well-known/mercure?topic=bench`` (a 0.x selector), ``POST`` form
``topic=bench&data=…``.  Readers are raw asyncio sockets counting event ends
(``\\n\\n``), so the client costs the same for both.  The goal (issue 13): the
adapter costs at most 10% (deliveries/s at least 90% of the topic API's, RSS
per stream at most 110%).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["main", "measure"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")  # pragma: no cover - Linux always has it


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    path: str  # the stream's request target
    publish: Callable[[httpx.Client, int], httpx.Response]


TOPIC_API = Endpoint(
    "topic API",
    "/topics/bench",
    lambda client, i: client.post("/topics/bench", json={"data": f"event {i}"}),
)
MERCURE = Endpoint(
    "Mercure",
    "/.well-known/mercure?topic=bench",
    lambda client, i: client.post(
        "/.well-known/mercure",
        content=f"topic=bench&data=event+{i}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
)


class Reader:
    """One stream on a raw socket; counts event ends (the opening block is one)."""

    def __init__(self) -> None:
        self.ends = 0
        self._tail = b""
        self.changed = asyncio.Event()

    async def run(self, port: int, target: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        writer.write(request.encode())
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                data = self._tail + chunk
                self.ends += data.count(b"\n\n")
                self._tail = (
                    data[-1:] if data.endswith(b"\n") and not data.endswith(b"\n\n") else b""
                )
                self.changed.set()
        finally:
            writer.close()


async def _wait_all(readers: Sequence[Reader], ends: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for reader in readers:
        while reader.ends < ends:
            reader.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"a stream got {reader.ends} of {ends} event ends")
            try:
                await asyncio.wait_for(reader.changed.wait(), left)
            except TimeoutError:
                continue


@dataclass
class _Target:
    endpoint: Endpoint
    port: int
    pid: int
    readers: list[Reader]
    rss_per_stream: float = 0.0
    best: float = 0.0
    expected: int = 1


async def _open(target: _Target, client: httpx.Client, streams: int) -> list[asyncio.Task[None]]:
    target.endpoint.publish(client, -1).raise_for_status()  # warm the code paths
    target.expected = 1
    before = _rss_kib(target.pid)
    target.readers = [Reader() for _ in range(streams)]
    tasks = [asyncio.create_task(r.run(target.port, target.endpoint.path)) for r in target.readers]
    await _wait_all(target.readers, 1, 60)
    await asyncio.sleep(0.5)
    target.rss_per_stream = (_rss_kib(target.pid) - before) * 1024 / streams
    return tasks


async def _round(target: _Target, client: httpx.Client, events: int) -> None:
    started = time.perf_counter()

    def publish_all() -> None:
        for i in range(events):
            target.endpoint.publish(client, i).raise_for_status()

    await asyncio.get_running_loop().run_in_executor(None, publish_all)
    target.expected += events
    await _wait_all(target.readers, target.expected, 120)
    rate = len(target.readers) * events / (time.perf_counter() - started)
    target.best = max(target.best, rate)


async def _measure(targets: list[_Target], streams: int, events: int, repeat: int) -> None:
    """Open the streams of every target, then publish rounds in turn (same load, same time)."""
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{t.port}", timeout=30) for t in targets]
    tasks: list[asyncio.Task[None]] = []
    try:
        for target, client in zip(targets, clients, strict=True):
            tasks += await _open(target, client, streams)
        for _ in range(repeat):
            for target, client in zip(targets, clients, strict=True):
                await _round(target, client, events)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            client.close()


def _start() -> tuple[subprocess.Popen[bytes], int] | None:
    """A started server and its port, or ``None`` if it lost its port to another process."""
    port = _free_port()
    args = [sys.executable, "-m", "ssehub", "serve", "--store", "memory", "--no-demos"]
    args += ["--port", str(port), "--log-level", "warning", "--heartbeat", "0"]
    proc = subprocess.Popen(args, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    while proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                time.sleep(0.2)
                if proc.poll() is None:  # the answer was ours, not another process's
                    return proc, port
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    return None


@contextmanager
def _server() -> Iterator[tuple[int, int]]:
    """A fresh ``ssehub serve --store memory`` (Mercure on, as by default): (port, pid)."""
    for _ in range(5):
        started = _start()
        if started is not None:
            break
    else:
        raise RuntimeError("could not start ssehub serve on a free port")
    proc, port = started
    try:
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def measure(streams: int, events: int, repeat: int) -> dict[str, dict[str, float]]:
    """Figures for the topic API and Mercure, each on its own fresh server, rounds interleaved."""
    with _server() as (own_port, own_pid), _server() as (m_port, m_pid):
        targets = [
            _Target(TOPIC_API, own_port, own_pid, []),
            _Target(MERCURE, m_port, m_pid, []),
        ]
        asyncio.run(_measure(targets, streams, events, repeat))
    return {
        t.endpoint.name: {"deliveries_per_s": t.best, "rss_per_stream": t.rss_per_stream}
        for t in targets
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args(argv)
    figures = measure(options.streams, options.events, options.repeat)
    own, mercure = figures["topic API"], figures["Mercure"]
    print(f"{options.streams} streams, {options.events} events, best of {options.repeat}")
    print(f"{'':12}{'deliveries/s':>14}{'RSS/stream':>14}")
    for name, row in figures.items():
        print(f"{name:12}{row['deliveries_per_s']:14.0f}{row['rss_per_stream'] / 1024:11.1f} KiB")
    rate = mercure["deliveries_per_s"] / own["deliveries_per_s"]
    rss = mercure["rss_per_stream"] / max(own["rss_per_stream"], 1.0)
    verdict = "within" if rate >= 0.9 and rss <= 1.1 else "OVER"
    print(f"Mercure / topic API: deliveries {rate:.0%}, RSS per stream {rss:.0%} ({verdict} 10%)")


if __name__ == "__main__":
    main(sys.argv[1:])
