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
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.polling import poll_until
from tests.support.processes import start_hub
from tests.support.procfs import tcp_sockets
from tests.support.raw_http import request, stalled_stream
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


def spread_over_two_workers(
    stack: ExitStack, url: str, minimum: int, topic: str = "t"
) -> tuple[list[StreamReader], dict[int, int]]:
    """At least ``minimum`` streams, opened until both workers hold some; and who holds how many."""
    readers: list[StreamReader] = []
    per_worker: dict[int, int] = {}
    while len(readers) < minimum or min(per_worker.values(), default=0) == 0:
        assert len(readers) < 40, f"the kernel never gave the second worker a stream: {per_worker}"
        readers.append(subscribe(stack, url, topic))
        per_worker = streams_per_worker(url, 2, len(readers))
    return readers, per_worker


def ids(reader: StreamReader, count: int) -> list[str]:
    return [event.id for event in reader.read_events(count)]


def test_subscribers_over_two_workers_get_every_event_once_in_order(tmp_path: Path) -> None:
    with (
        start_hub(sqlite_hub(tmp_path / "hub.db", "--workers", "2"), log_dir=tmp_path) as hub,
        ExitStack() as stack,
    ):
        readers, _ = spread_over_two_workers(stack, hub.url, 6)
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
        readers, per_worker = spread_over_two_workers(stack, hub.url, 4)
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


def test_sigterm_ends_every_stream_of_both_workers_with_a_retry_within_the_drain_timeout(
    tmp_path: Path,
) -> None:
    drain_timeout = 1.0
    args = sqlite_hub(tmp_path / "hub.db", "--workers", "2", "--drain-timeout", "1",
                      "--write-timeout", "600")  # fmt: skip
    with start_hub(args, log_dir=tmp_path) as hub, ExitStack() as stack:
        readers, _ = spread_over_two_workers(stack, hub.url, 2)
        stalled = stalled_stream(hub.port)  # never reads: only the timeout ends it
        stack.callback(stalled.close)
        payload = "q" * 64 * 1024
        for _ in range(200):  # until its worker holds bytes the client will never read
            publish(hub.url, "t", payload)
            port = stalled.getsockname()[1]
            if any(s.remote_port == port and s.send_queue for s in tcp_sockets(hub.port)):
                break
        else:
            raise AssertionError("the stalled stream never filled its socket")
        started = time.monotonic()
        assert hub.terminate(signal.SIGTERM, timeout=20) == 0
        took = time.monotonic() - started
        for reader in readers:
            tail = reader.read_to_end()
            assert b"retry: " in tail.split(b"retry: 3000")[-1]  # the drain's jittered retry
        # Each worker: its drain, at most drain_timeout for unfinished responses,
        # its shutdown; the supervisor looks for exits every 0.5 s.
        assert took < drain_timeout + 1.5, f"exited {took:.2f} s after SIGTERM"
    log = hub.log()
    assert "Traceback" not in log


def metric(url: str, name: str, scope: str = "all") -> float:
    """One sample of ``/metrics`` (Prometheus text), by sample name; fails when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", params={"scope": scope}, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    raise AssertionError(f"no {name} in {text}")


def test_metrics_and_health_of_two_workers_are_per_process_and_summed(tmp_path: Path) -> None:
    with (
        start_hub(sqlite_hub(tmp_path / "hub.db", "--workers", "2"), log_dir=tmp_path) as hub,
        ExitStack() as stack,
    ):
        readers, per_worker = spread_over_two_workers(stack, hub.url, 4)
        published = [publish(hub.url, "t", f"event {i}") for i in range(5)]
        for reader in readers:
            assert ids(reader, 5) == published
        streams = len(readers)
        summed = {
            "ssehub_open_streams": streams,
            "ssehub_streams_opened_total": streams,
            "ssehub_events_delivered_total": 5 * streams,
            # Every worker hears every event: the sum would say 10.
            "ssehub_events_published_total": 5,
        }
        poll_until(
            lambda: all(metric(hub.url, name) == value for name, value in summed.items()),
            f"summed metrics {summed}",
        )
        for _ in range(10):  # any worker may answer: each counts only its own streams
            assert metric(hub.url, "ssehub_open_streams", "process") in per_worker.values()
            assert metric(hub.url, "ssehub_events_published_total", "process") == 5
            workers = health(hub.url)["workers"]
            assert workers["count"] == 2
            assert workers["open_streams"] == streams
            assert {int(p): n for p, n in workers["open_streams_per_pid"].items()} == per_worker
        refused = httpx.get(f"{hub.url}/metrics", params={"scope": "everything"}, timeout=10)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_request"


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


def test_a_second_serve_with_workers_on_a_taken_port_is_refused(tmp_path: Path) -> None:
    """Workers listen in the port's SO_REUSEPORT group: a second run must not join it."""
    with start_hub(sqlite_hub(tmp_path / "a.db", "--workers", "2"), log_dir=tmp_path) as hub:
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "ssehub",
                "serve",
                "--port",
                str(hub.port),
                *sqlite_hub(tmp_path / "b.db", "--workers", "2"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{hub.port}" in second.stderr
        assert "Traceback" not in second.stderr
