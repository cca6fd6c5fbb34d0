"""What HTTP/2 costs: idle memory per stream and fan-out over HTTPS, HTTP/2 against HTTP/1.1.

``python -m benchmarks.bench_h2 [--streams N] [--events N] [--per-connection N]``

Every row is a real server process with ``--store memory`` on a free port, measured
the same way in the same run:

* **ssehub h2** — ``ssehub serve --certfile/--keyfile`` (Hypercorn), streams over
  HTTP/2, ``--per-connection`` streams on each connection (as a browser multiplexes
  one origin);
* **ssehub h1 tls** — the same server, the same TLS, streams over HTTP/1.1
  (ALPN ``http/1.1``), one connection per stream;
* **ssehub h1** — plain ``ssehub serve`` (uvicorn + httptools, no TLS), one
  connection per stream: the default server, the baseline;
* **granian h2** (peer; only when ``granian`` is installed) — the same ``HubApp``
  under Granian over HTTPS + HTTP/2, the server ssehub measured before choosing
  Hypercorn.

Figures: **idle RSS per stream** (server RSS with ``--streams`` streams open and
quiet, less its RSS before they opened, divided by the streams); **fan-out
deliveries/s** (``--events`` events published one after another over one keep-alive
connection, each delivered to every stream; from the first publish to the last
delivery) and the server's **CPU µs per delivery** (what the server spent, whatever
the load client's own speed).  The load client (:mod:`benchmarks._h2load`) runs in
this process on one event loop; its CPU share is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks._h2load import StreamLoad
from benchmarks._servers import RunningServer, ServerSpec, hub_spec, start_server
from ssehub.server import dev_certificate

TOPIC = "bench"


def _specs(cert: Path, key: Path) -> list[tuple[ServerSpec, bool]]:
    """``(server, http2)`` rows; the Granian peer only when it is installed."""
    tls = ["--certfile", str(cert), "--keyfile", str(key), "--log-level", "warning"]
    https = dataclasses.replace(hub_spec(tls), tls=True)
    rows = [
        (dataclasses.replace(https, name="ssehub h2"), True),
        (dataclasses.replace(https, name="ssehub h1 tls"), False),
        (dataclasses.replace(hub_spec(["--log-level", "warning"]), name="ssehub h1"), False),
    ]
    if importlib.util.find_spec("granian") is not None:
        granian_args = [
            "--interface",
            "asgi",
            "--http",
            "auto",
            "--no-ws",
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
        ]
        granian = ServerSpec(
            name="granian h2",
            argv=lambda port, _node: [
                *(sys.executable, "-m", "granian", *granian_args, "--port", str(port)),
                *("--ssl-certificate", str(cert), "--ssl-keyfile", str(key)),
                "benchmarks.peers.granian_hub_app:app",
            ],
            description="HubApp under Granian (HTTPS, HTTP/2)",
            tls=True,
        )
        rows.append((granian, True))
    return rows


async def measure(
    server: RunningServer,
    http2: bool,
    streams: int,
    events: int,
    per_connection: int,
    *,
    settle: float = 1.0,
) -> dict[str, Any]:
    """One row's figures; ``settle`` seconds pass between opening the streams and weighing."""
    host, port = server.endpoints[0]
    async with httpx.AsyncClient(base_url=server.publish_url, verify=False, timeout=30) as pub:
        await pub.post(f"/topics/{TOPIC}", json={"data": "warm-up"})
        gc.collect()
        rss_before = server.rss()
        load = StreamLoad(host, port, f"/topics/{TOPIC}", http2, tls=server.tls)
        opened_at = time.perf_counter()
        await load.open(streams, per_connection)
        open_seconds = time.perf_counter() - opened_at
        await asyncio.sleep(settle)  # let the server settle before weighing it
        rss_idle = server.rss()
        cpu_before = server.cpu_seconds()
        client_cpu = time.process_time()
        started = time.perf_counter()
        for seq in range(events):
            answer = await pub.post(f"/topics/{TOPIC}", json={"data": f"{seq} {time.time_ns()}"})
            answer.raise_for_status()
        want = streams * events
        deadline = started + 120
        while load.delivered < want and time.perf_counter() < deadline and not load.errors:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
        server_cpu = server.cpu_seconds() - cpu_before
        client_cpu = time.process_time() - client_cpu
        delivered = load.delivered
        errors = list(load.errors)
        await load.aclose()
    return {
        "streams": streams,
        "open_s": open_seconds,
        "rss_per_stream_kb": (rss_idle - rss_before) / streams / 1024,
        "deliveries_per_s": delivered / seconds,
        "delivered": delivered,
        "missing": want - delivered,
        "server_cpu_us_per_delivery": server_cpu / max(1, delivered) * 1e6,
        "client_cpu_share": client_cpu / seconds,
        "errors": errors[:3],
    }


def run(streams: int, events: int, per_connection: int) -> list[tuple[str, dict[str, Any]]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-h2-") as folder:
        cert, key = dev_certificate(Path(folder))
        for spec, http2 in _specs(cert, key):
            with start_server(spec, Path(folder) / "logs") as server:
                figures = asyncio.run(measure(server, http2, streams, events, per_connection))
            results.append((spec.name, figures))
            print(f"  {spec.name}: {figures}", flush=True)
    return results


def render(results: list[tuple[str, dict[str, Any]]], console: Console) -> None:
    table = Table(title="HTTPS + HTTP/2 against HTTP/1.1 (same hub, same run)")
    for column in ("server", "streams", "idle RSS/stream", "deliveries/s", "server CPU/delivery",
                   "missing", "client CPU share"):  # fmt: skip
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, r in results:
        table.add_row(
            name,
            str(r["streams"]),
            f"{r['rss_per_stream_kb']:.1f} KiB",
            f"{r['deliveries_per_s']:,.0f}",
            f"{r['server_cpu_us_per_delivery']:.1f} µs",
            str(r["missing"]),
            f"{r['client_cpu_share']:.0%}",
        )
    console.print(table)
    by_name = dict(results)
    h2, h1 = by_name.get("ssehub h2"), by_name.get("ssehub h1")
    if h2 and h1:
        console.print(
            f"HTTP/2 costs {h2['rss_per_stream_kb'] - h1['rss_per_stream_kb']:+.1f} KiB per idle "
            f"stream and {h2['server_cpu_us_per_delivery'] / h1['server_cpu_us_per_delivery']:.1f}"
            "× the server CPU per delivery of plain HTTP/1.1 (TLS included)."
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_h2")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--per-connection", type=int, default=100)
    args = parser.parse_args(argv)
    results = run(args.streams, args.events, args.per_connection)
    render(results, Console())


if __name__ == "__main__":
    main(sys.argv[1:])
