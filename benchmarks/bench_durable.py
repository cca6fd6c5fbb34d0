"""Durable Streams: appends/s and catch-up read MB/s, ssehub beside the Node reference server.

``python -m benchmarks.bench_durable [--writers N] [--appends N] [--read-mb N] [--repeat N]``

Servers, all started here on free loopback ports: ``ssehub serve`` on the
SQLite store and on a private Redis, and the reference server
(``@durable-streams/server``, pinned in ``tests/peers/durable_streams``) in
memory and file-backed (its LMDB + log files; compression off, as ssehub
sends none).  Same client for all: httpx, one keep-alive connection per
writer.

* **appends/s**: ``--writers`` concurrent writers, each appending
  ``--appends`` 64-byte ``text/plain`` bodies to its own stream, one request
  after the other (an AI generation's shape); total appends over wall time.
* **in process**: the same appends and reads as calls of ``ssehub.durable``
  on its SQLite and Redis stores, no HTTP (what the store costs alone).
* **catch-up MB/s**: a stream of ``--read-mb`` MB (64 KiB appends) read from
  ``offset=-1`` to the tail, following ``Stream-Next-Offset`` (ssehub answers
  at most 1 MiB per response, the reference everything at once); best of
  ``--repeat``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from benchmarks._servers import free_port, hub_spec, redis_server, start_server, wait_listening
from ssehub.durable import DurableStore, DurableStreams
from ssehub.durable._redis import RedisDurableStore
from ssehub.durable._service import AppendRequest, CreateRequest
from ssehub.durable._sqlite import SQLiteDurableStore

PEER = Path(__file__).resolve().parent.parent / "tests" / "peers" / "durable_streams"
BODY = b"x" * 64
CHUNK = b"y" * 65536


@contextlib.contextmanager
def reference_server(log_dir: Path, data_dir: Path | None) -> Iterator[str]:
    """``node reference-server.mjs PORT [DATA_DIR]`` until the block ends; its base URL."""
    if not (PEER / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER, check=True)
    port = free_port()
    args = ["node", "reference-server.mjs", str(port)] + ([str(data_dir)] if data_dir else [])
    with open(log_dir / f"reference-{port}.log", "wb") as log:
        proc = subprocess.Popen(args, cwd=PEER, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, proc, 20, "the reference server")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _writer(base: str, name: str, appends: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        url = f"/v1/stream/{name}"
        created = await client.put(url, headers={"Content-Type": "text/plain"})
        created.raise_for_status()
        for _ in range(appends):
            answer = await client.post(url, content=BODY, headers={"Content-Type": "text/plain"})
            if answer.status_code not in (200, 204):
                raise RuntimeError(f"append refused: {answer.status_code} {answer.text}")


async def append_rate(base: str, writers: int, appends: int) -> float:
    tag = time.monotonic_ns()
    started = time.perf_counter()
    await asyncio.gather(*(_writer(base, f"w-{tag}-{i}", appends) for i in range(writers)))
    return writers * appends / (time.perf_counter() - started)


async def read_rate(base: str, megabytes: int, repeat: int) -> float:
    url = f"/v1/stream/read-{time.monotonic_ns()}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        (
            await client.put(url, headers={"Content-Type": "application/octet-stream"})
        ).raise_for_status()
        for _ in range(megabytes * 16):
            headers = {"Content-Type": "application/octet-stream"}
            (await client.post(url, content=CHUNK, headers=headers)).raise_for_status()
        best = 0.0
        for _ in range(repeat):
            offset, total = "-1", 0
            started = time.perf_counter()
            while True:
                answer = await client.get(url, params={"offset": offset})
                total += len(answer.content)
                offset = answer.headers["stream-next-offset"]
                if answer.headers.get("stream-up-to-date") == "true":
                    break
            elapsed = time.perf_counter() - started
            if total != megabytes * 1024 * 1024:
                raise RuntimeError(f"read {total} bytes, wrote {megabytes} MiB")
            best = max(best, total / elapsed / 1e6)
        return best


async def store_rates(store: DurableStore, appends: int, megabytes: int) -> tuple[float, float]:
    """Appends/s and read MB/s of ``store`` called in process (one writer, one reader)."""
    await store.start()
    try:
        streams = DurableStreams(store)
        text = CreateRequest("text/plain", None, None, None, False, b"")
        await streams.create("a", text)
        started = time.perf_counter()
        for _ in range(appends):
            await streams.append("a", AppendRequest("text/plain", BODY, False, None, None))
        append_rate = appends / (time.perf_counter() - started)
        await streams.create("r", text)
        for _ in range(megabytes * 16):
            await streams.append("r", AppendRequest("text/plain", CHUNK, False, None, None))
        meta = await store.load("r")
        assert meta is not None
        position, total = 0, 0
        started = time.perf_counter()
        while position < meta.tail:
            records = await store.read(meta.id, position, 1 << 20)
            position = records[-1][0]
            total += sum(len(data) for _, data in records)
        return append_rate, total / (time.perf_counter() - started) / 1e6
    finally:
        await store.aclose()


def measure(base: str, options: argparse.Namespace) -> tuple[float, float]:
    appends = asyncio.run(append_rate(base, options.writers, options.appends))
    reads = asyncio.run(read_rate(base, options.read_mb, options.repeat))
    return appends, reads


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--appends", type=int, default=300)
    parser.add_argument("--read-mb", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    if shutil.which("node") is None:
        raise SystemExit("node is needed for the reference server")
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-durable-") as tmp:
        work = Path(tmp)
        quiet = ("--no-demos", "--log-level", "warning")
        spec = hub_spec(quiet, store=f"sqlite:{work / 'hub.db'}")
        with start_server(spec, work) as server:
            rows.append(
                ("ssehub, SQLite", *measure(f"http://127.0.0.1:{server.ports[0]}", options))
            )
        with redis_server(work) as redis:
            spec = hub_spec(quiet, store=redis.url, companions=(redis.pid,))
            with start_server(spec, work) as server:
                base = f"http://127.0.0.1:{server.ports[0]}"
                rows.append(("ssehub, Redis", *measure(base, options)))
            in_process = options.writers * options.appends
            store: DurableStore = RedisDurableStore(redis.url, prefix="bench")
            redis_rates = asyncio.run(store_rates(store, in_process, options.read_mb))
        store = SQLiteDurableStore(str(work / "in-process.db"))
        sqlite_rates = asyncio.run(store_rates(store, in_process, options.read_mb))
        with reference_server(work, None) as base:
            rows.append(("@durable-streams/server 0.3.7, memory", *measure(base, options)))
        with reference_server(work, work / "reference-data") as base:
            rows.append(("@durable-streams/server 0.3.7, file-backed", *measure(base, options)))
    print(
        f"{options.writers} writers × {options.appends} appends of {len(BODY)} B; "
        f"catch-up read of {options.read_mb} MiB (best of {options.repeat})"
    )
    print(f"{'server':44} {'appends/s':>10} {'catch-up MB/s':>14}")
    for name, appends, reads in rows:
        print(f"{name:44} {appends:10.0f} {reads:14.1f}")
    print(
        f"{'in process (no HTTP), SQLite store':44} {sqlite_rates[0]:10.0f} {sqlite_rates[1]:14.1f}"
    )
    print(f"{'in process (no HTTP), Redis store':44} {redis_rates[0]:10.0f} {redis_rates[1]:14.1f}")


if __name__ == "__main__":
    main()
