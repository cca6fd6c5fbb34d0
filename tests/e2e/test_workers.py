"""Many processes on one SQLite file: ``ssehub serve --workers 2`` and two separate serves.

Issue 12: with two processes on one file each subscriber received only the
events published to its own process.  Here every subscriber, whichever
process holds it, must receive every published event exactly once and in
order (checked id by id), also after one process is SIGKILLed mid-stream (its
clients resume elsewhere with ``Last-Event-ID``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.polling import poll_until
from tests.support.processes import start_hub
from tests.support.raw_http import request
from tests.support.sse import StreamReader, open_stream


def sqlite_hub(path: Path, *extra: str) -> list[str]:
    return ["--store", f"sqlite:{path}", "--no-demos", "--heartbeat", "1", *extra]


def health(url: str) -> dict[str, Any]:
    """One ``/healthz`` answer, on a fresh connection (so any worker may answer)."""
    answer = httpx.get(f"{url}/healthz", timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def streams_per_worker(url: str, workers: int, streams: int) -> dict[int, int]:
    """Ask until ``workers`` processes answered and their latest counts add up to ``streams``."""
    latest: dict[int, int] = {}

    def settled() -> bool:
        answer = health(url)
        latest[int(answer["pid"])] = int(answer["open_streams"])
        return len(latest) == workers and sum(latest.values()) == streams

    poll_until(settled, f"{workers} workers holding {streams} streams", interval=0.01)
    return latest


def publish(url: str, topic: str, data: str) -> str:
    answer = httpx.post(f"{url}/topics/{topic}", json={"data": data}, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def subscribe(stack: ExitStack, url: str, topic: str = "t") -> StreamReader:
    reader = stack.enter_context(open_stream(f"{url}/topics/{topic}"))
    reader.read_until(b"retry: ")  # registered: everything published from now on is ours
    return reader


def ids(reader: StreamReader, count: int) -> list[str]:
    return [event.id for event in reader.read_events(count)]


def test_subscribers_over_two_workers_get_every_event_once_in_order(tmp_path: Path) -> None:
    with (
        start_hub(sqlite_hub(tmp_path / "hub.db", "--workers", "2"), log_dir=tmp_path) as hub,
        ExitStack() as stack,
    ):
        readers: list[StreamReader] = []
        per_worker: dict[int, int] = {}
        while len(readers) < 6 or min(per_worker.values(), default=0) == 0:
            assert len(readers) < 40, (
                f"the kernel never gave the second worker a stream: {per_worker}"
            )
            readers.append(subscribe(stack, hub.url))
            per_worker = streams_per_worker(hub.url, 2, len(readers))
        published = [publish(hub.url, "t", f"event {i}") for i in range(40)]
        for reader in readers:
            assert ids(reader, 40) == published


def test_subscribers_of_two_serves_on_one_file_get_every_event_once_in_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.db"
    with (
        start_hub(sqlite_hub(path), log_dir=tmp_path) as a,
        start_hub(sqlite_hub(path), log_dir=tmp_path) as b,
        ExitStack() as stack,
    ):
        readers = [subscribe(stack, node.url) for node in (a, b, a, b)]
        published = [publish((a, b)[i % 2].url, "t", f"event {i}") for i in range(40)]
        for reader in readers:
            assert ids(reader, 40) == published


def resume(stack: ExitStack, url: str, reader: StreamReader, count: int) -> list[str]:
    """The ids of ``count`` events: read on, and after the stream broke, resume at ``url``."""
    try:
        return ids(reader, count)
    except (AssertionError, httpx.HTTPError):
        pass
    seen = [event.id for event in reader.events]
    again = stack.enter_context(open_stream(f"{url}/topics/t", headers={"Last-Event-ID": seen[-1]}))
    return seen + ids(again, count - len(seen))


def test_clients_of_a_killed_serve_resume_on_the_other_with_no_loss(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    with (
        start_hub(sqlite_hub(path), log_dir=tmp_path) as a,
        start_hub(sqlite_hub(path), log_dir=tmp_path) as b,
        ExitStack() as stack,
    ):
        on_a, on_b = subscribe(stack, a.url), subscribe(stack, b.url)
        published = [publish((a, b)[i % 2].url, "t", f"before {i}") for i in range(10)]
        assert ids(on_a, 10) == ids(on_b, 10) == published
        a.proc.kill()
        a.proc.wait(timeout=10)
        published += [publish(b.url, "t", f"after {i}") for i in range(10)]
        assert resume(stack, b.url, on_a, 20) == published
        assert ids(on_b, 20) == published


def test_clients_of_a_killed_worker_resume_on_the_port_with_no_loss(tmp_path: Path) -> None:
    with (
        start_hub(sqlite_hub(tmp_path / "hub.db", "--workers", "2"), log_dir=tmp_path) as hub,
        ExitStack() as stack,
    ):
        readers: list[StreamReader] = []
        per_worker: dict[int, int] = {}
        while len(readers) < 4 or min(per_worker.values(), default=0) == 0:
            assert len(readers) < 40, (
                f"the kernel never gave the second worker a stream: {per_worker}"
            )
            readers.append(subscribe(stack, hub.url))
            per_worker = streams_per_worker(hub.url, 2, len(readers))
        published = [publish(hub.url, "t", f"before {i}") for i in range(10)]
        for reader in readers:
            assert ids(reader, 10) == published
        victim = min(per_worker)
        os.kill(victim, signal.SIGKILL)
        published += [publish(hub.url, "t", f"after {i}") for i in range(10)]
        for reader in readers:
            assert resume(stack, hub.url, reader, 20) == published
        answering: set[int] = set()

        def replaced() -> bool:
            answering.add(int(health(hub.url)["pid"]))
            return len(answering - {victim}) == 2

        poll_until(replaced, "uvicorn to replace the killed worker", interval=0.01)


def test_sigterm_drains_every_worker(tmp_path: Path) -> None:
    with (
        start_hub(sqlite_hub(tmp_path / "hub.db", "--workers", "2"), log_dir=tmp_path) as hub,
        ExitStack() as stack,
    ):
        readers: list[StreamReader] = []
        per_worker: dict[int, int] = {}
        while len(readers) < 2 or min(per_worker.values(), default=0) == 0:
            assert len(readers) < 40, (
                f"the kernel never gave the second worker a stream: {per_worker}"
            )
            readers.append(subscribe(stack, hub.url))
            per_worker = streams_per_worker(hub.url, 2, len(readers))
        assert hub.terminate(signal.SIGTERM, timeout=20) == 0
        for reader in readers:
            tail = reader.read_to_end()
            assert b"retry: " in tail.split(b"retry: 3000")[-1]  # the drain's jittered retry


def test_workers_refuse_the_memory_store_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ssehub", "serve", "--workers", "2", "--store", "memory"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--workers > 1 needs a store the processes share" in result.stderr


@contextmanager
def fastapi_app(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The README's mount example under ``uvicorn --workers 2``."""
    (tmp_path / "app.py").write_text(
        "from contextlib import asynccontextmanager\n"
        "from fastapi import FastAPI, Request\n"
        "from ssehub.server import HubApp, ServerSettings\n"
        f"hub_app = HubApp(ServerSettings(store='sqlite:{tmp_path / 'events.db'}'))\n"
        "@asynccontextmanager\n"
        "async def lifespan(app):\n"
        "    async with hub_app.lifespan():\n"
        "        yield\n"
        "app = FastAPI(lifespan=lifespan)\n"
        "app.mount('/sse', hub_app)\n"
        "@app.get('/rooms/{room}')\n"
        "async def room(room: str, request: Request):\n"
        "    return await hub_app.subscribe(request, f'rooms/{room}')\n"
        "@app.post('/rooms/{room}')\n"
        "async def say(room: str, request: Request):\n"
        "    body = (await request.body()).decode()\n"
        "    return {'id': (await hub_app.hub.publish(f'rooms/{room}', body)).id}\n"
    )
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--workers", "2", "--port", str(port)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def test_the_readme_fastapi_mount_under_uvicorn_workers_delivers_every_event(
    tmp_path: Path,
) -> None:
    from tests.support.ports import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with fastapi_app(tmp_path, port) as proc, ExitStack() as stack:
        pids: set[int] = set()

        def both_workers_up() -> bool:
            assert proc.poll() is None, (tmp_path / "uvicorn.log").read_text()
            try:
                pids.add(int(httpx.get(f"{url}/sse/healthz", timeout=5).json()["pid"]))
            except httpx.HTTPError:
                return False
            return len(pids) == 2

        poll_until(both_workers_up, "both uvicorn workers to answer", timeout=60)
        readers = []
        for _ in range(6):
            reader = stack.enter_context(open_stream(f"{url}/rooms/lobby"))
            reader.read_until(b"retry: ")
            readers.append(reader)
        published = []
        for i in range(10):
            answer = httpx.post(f"{url}/rooms/lobby", content=f"m{i}", timeout=10)
            assert answer.status_code == 200, answer.text
            published.append(answer.json()["id"])
        for reader in readers:
            assert ids(reader, 10) == published


def test_every_worker_enforces_the_http_bounds(tmp_path: Path) -> None:
    """Workers are spawned processes: each must still run the bounded HTTP protocol."""
    args = sqlite_hub(tmp_path / "hub.db", "--workers", "2", "--max-header-count", "10")
    with start_hub(args, log_dir=tmp_path) as hub:
        bomb = "".join(f"X-Filler-{i}: x\r\n" for i in range(50))
        for _ in range(20):  # the kernel hands connections to both workers over time
            answer = request(
                hub.port, f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{bomb}\r\n".encode()
            )
            assert answer.status == 431
            assert answer.json()["error"] == "too_many_headers"
