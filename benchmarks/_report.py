"""Tables (rich) and the JSON record of one ``bench_hub`` run.

Results are keyed ``scenario label → server name → list of runs``; a table shows the
median run of each server (by the scenario's headline figure) and the goals of the
issue are checked against those medians.  A server that lost or reordered an event in
any run is shown in red with its counts, never hidden.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["Results", "goal_checks", "headline", "render", "write_json"]

#: ``scenario label -> server -> runs`` (each run a flat dict of figures).
Results = dict[str, dict[str, list[dict[str, Any]]]]

#: The figure each scenario is judged by, and whether higher is better.
HEADLINE = {
    "idle": ("rss_per_stream_kb", False),
    "fanout": ("deliveries_per_s", True),
    "latency": ("p99_ms", False),
}


def _kind(label: str) -> str:
    return label.split(" ", 1)[0]


def headline(label: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run by the scenario's headline figure (ties: the later run)."""
    key, _ = HEADLINE[_kind(label)]
    ordered = sorted(runs, key=lambda r: _num(r.get(key)))
    return ordered[(len(ordered) - 1) // 2] if ordered else {}


def _num(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _fmt(value: Any, digits: int = 1) -> str:
    number = _num(value)
    if math.isnan(number):
        return "—"
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.{digits}f}"


def _loss_cell(runs: list[dict[str, Any]]) -> str:
    bad = [r for r in runs if not r.get("zero_loss")]
    if not bad:
        return "[green]none[/]"
    worst = max(bad, key=lambda r: r.get("missing", 0) + r.get("out_of_order", 0))
    parts = []
    for name in ("failed", "missing", "out_of_order"):
        if worst.get(name):
            parts.append(f"{name.replace('_', '-')} {worst[name]:,}")
    if "held" in worst and worst["held"] != worst["streams"]:
        parts.append(f"held {worst['held']:,}/{worst['streams']:,}")
    if worst.get("server_exited"):
        parts.append("server exited")
    return "[red]" + (", ".join(parts) or "yes") + f" ({len(bad)}/{len(runs)} runs)[/]"


_Column = tuple[str, Callable[[dict[str, Any]], str]]

_COLUMNS: dict[str, list[_Column]] = {
    "idle": [
        ("streams held", lambda r: f"{r['held']:,}/{r['streams']:,}"),
        ("RSS base MB", lambda r: _fmt(r["rss_base_mb"])),
        ("RSS held MB", lambda r: _fmt(r["rss_held_mb"])),
        ("RSS/stream KB", lambda r: _fmt(r["rss_per_stream_kb"], 2)),
        ("open s", lambda r: _fmt(r["open_seconds"], 2)),
        ("server CPU open s", lambda r: _fmt(r["server_cpu_open_s"], 2)),
        ("client CPU open s", lambda r: _fmt(r["client_cpu_open_s"], 2)),
    ],
    "fanout": [
        ("deliveries/s", lambda r: _fmt(r["deliveries_per_s"])),
        ("publishes/s", lambda r: _fmt(r["published"] / r["publish_seconds"])),
        ("time s", lambda r: _fmt(r["seconds"], 2)),
        ("server CPU %", lambda r: _fmt(r["server_cpu_pct"], 0)),
        ("server µs/deliv", lambda r: _fmt(r["server_us_per_delivery"], 1)),
        ("client CPU %", lambda r: _fmt(r["client_cpu_pct"], 0)),
        ("client µs/deliv", lambda r: _fmt(r["client_us_per_delivery"], 1)),
        ("others CPU %", lambda r: _fmt(r["others_cpu_pct"], 0)),
    ],
    "latency": [
        ("p50 ms", lambda r: _fmt(r["p50_ms"], 2)),
        ("p99 ms", lambda r: _fmt(r["p99_ms"], 2)),
        ("max ms", lambda r: _fmt(r["max_ms"], 1)),
        ("published/s", lambda r: _fmt(r["achieved_rate"], 1)),
        ("hub write ms/flush", lambda r: _fmt(r["flush_ms"], 2)),
        ("server CPU %", lambda r: _fmt(r["server_cpu_pct"], 0)),
        ("client CPU %", lambda r: _fmt(r["client_cpu_pct"], 0)),
        ("others CPU %", lambda r: _fmt(r["others_cpu_pct"], 0)),
    ],
}


def _safe(cell: Callable[[dict[str, Any]], str], run: dict[str, Any]) -> str:
    try:
        return cell(run)
    except (KeyError, TypeError, ValueError):
        return "—"


def _hub_name(servers: list[str]) -> str | None:
    return next((s for s in servers if s.startswith("ssehub")), None)


def _ratio_cell(hub: float, peer: float, higher_is_better: bool) -> str:
    if math.isnan(hub) or math.isnan(peer) or peer == 0 or hub == 0:
        return "—"
    ratio = hub / peer
    better = ratio > 1 if higher_is_better else ratio < 1
    colour = "green" if better else "red"
    return f"[{colour}]{ratio:.3g}×[/]"


def render(results: Results, console: Console, client_procs: int) -> None:
    """Print one table per scenario: a row per figure, a column per server.

    Under the figures come the hub's headline figure divided by each server's
    (green when the hub is better) and each server's loss and reordering.
    """
    for label, by_server in results.items():
        kind = _kind(label)
        servers = list(by_server)
        hub = _hub_name(servers)
        key, higher = HEADLINE[kind]
        runs = max(len(r) for r in by_server.values())
        table = Table(
            title=label,
            title_justify="left",
            caption=f"median of {runs} run(s); load client: {client_procs} process(es) "
            "+ publisher; CPU % of one core",
            caption_justify="left",
        )
        table.add_column("")
        for server in servers:
            table.add_column(server, justify="right")
        medians = {server: headline(label, by_server[server]) for server in servers}
        for name, cell in _COLUMNS[kind]:
            table.add_row(name, *(_safe(cell, medians[s]) for s in servers))
        if hub is not None and len(servers) > 1:
            hub_value = _num(medians[hub].get(key))
            table.add_row(
                f"{hub} ÷ this ({key})",
                *(
                    "" if s == hub else _ratio_cell(hub_value, _num(medians[s].get(key)), higher)
                    for s in servers
                ),
            )
        table.add_row("loss / reorder", *(_loss_cell(by_server[s]) for s in servers))
        errors = [
            f"{s}: {e}" for s in servers for r in by_server[s] for e in r.get("errors", [])[:2]
        ]
        errors += [f"{s}: {r['error']}" for s in servers for r in by_server[s] if "error" in r]
        console.print(table)
        for line in errors[:6]:
            console.print(f"  [yellow]{line}[/]")


def goal_checks(results: Results) -> list[dict[str, Any]]:
    """The issue's goals, each with the figures it was judged on and a verdict."""
    checks: list[dict[str, Any]] = []

    def add(goal: str, measured: str, ok: bool | None) -> None:
        checks.append({"goal": goal, "measured": measured, "ok": ok})

    for label, by_server in results.items():
        hub = _hub_name(list(by_server))
        if hub is None:
            continue
        kind = _kind(label)
        mine = headline(label, by_server[hub])
        peers = {s: headline(label, r) for s, r in by_server.items() if s != hub}
        lossless = all(r.get("zero_loss") for r in by_server[hub])
        add(f"{label}: zero loss, in order", "yes" if lossless else "NO", lossless)
        if kind == "idle":
            held = mine.get("held", 0)
            if mine.get("streams", 0) >= 10_000:
                add("10,000 concurrent streams held", f"{held:,}", held >= 10_000)
            rss = _num(mine.get("rss_per_stream_kb"))
            for peer, limit in (("aiohttp-sse", 1.0), ("sse-starlette", 0.5)):
                if peer in peers:
                    theirs = _num(peers[peer].get("rss_per_stream_kb"))
                    word = "below" if limit == 1.0 else "at most half of"
                    add(
                        f"RSS/stream {word} {peer}'s",
                        f"{rss:.1f} KB vs {theirs:.1f} KB",
                        rss < theirs if limit == 1.0 else rss <= theirs * limit,
                    )
        elif kind == "fanout":
            rate = _num(mine.get("deliveries_per_s"))
            for peer, factor in (("sse-starlette", 3.0), ("aiohttp-sse", 2.0)):
                if peer in peers:
                    theirs = _num(peers[peer].get("deliveries_per_s"))
                    add(
                        f"{label}: ≥ {factor:.0f}× {peer}'s deliveries/s",
                        f"{rate:,.0f} vs {theirs:,.0f} ({rate / theirs:.2f}×)",
                        rate >= factor * theirs,
                    )
        elif kind == "latency":
            p99 = _num(mine.get("p99_ms"))
            add(f"{label}: p99 < 50 ms", f"{p99:.1f} ms", p99 < 50)
    return checks


def render_goals(checks: list[dict[str, Any]], console: Console) -> None:
    if not checks:
        return
    table = Table(title="goals (issue 3)", title_justify="left")
    table.add_column("goal")
    table.add_column("measured", justify="right")
    table.add_column("met")
    for check in checks:
        verdict = "[green]yes[/]" if check["ok"] else "[red]no[/]"
        table.add_row(check["goal"], check["measured"], verdict)
    console.print(table)


def write_json(
    results: Results, checks: list[dict[str, Any]], settings: dict[str, Any], out_dir: Path
) -> Path:
    """Write the run to ``out_dir/bench_hub-<UTC time>.json`` and return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = out_dir / f"bench_hub-{stamp}.json"
    record = {
        "benchmark": "bench_hub",
        "time_utc": stamp,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "settings": settings,
        "results": results,
        "medians": {
            label: {s: headline(label, runs) for s, runs in by.items()}
            for label, by in results.items()
        },
        "goals": checks,
    }
    path.write_text(json.dumps(_clean(record), indent=2, allow_nan=False) + "\n")
    return path


def _clean(value: Any) -> Any:
    """``value`` with NaN as ``null`` and tuples as lists, ready for strict JSON."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
