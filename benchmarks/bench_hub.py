"""Hub benchmarks (issue 3): ``ssehub serve`` beside sse-starlette and aiohttp-sse, same run.

Scenarios, each run against every server in turn (one server process tree at a time,
restarted for every run, on a free loopback port):

- ``idle``: N open streams held for a while; server RSS per stream.
- ``fanout``: N subscribers on one topic, K events published back to back;
  deliveries/s and a check that every subscriber got 1..K in order.
- ``latency``: N subscribers, events published at a fixed rate; p50/p99/max
  publish-to-receive latency over every delivery.

The defaults finish in a few minutes on a 2-core machine::

    python -m benchmarks.bench_hub
    python -m benchmarks.bench_hub --full              # the issue's sizes
    python -m benchmarks.bench_hub --servers ssehub --scenarios fanout --fanout 10000
    python -m benchmarks.bench_hub --servers ssehub --nodes 2 --redis   # two hub nodes

Tables go to the terminal; the full record goes to ``benchmarks/results/`` as JSON.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from benchmarks import _report, _scenarios
from benchmarks._servers import (
    HUB_VARIANTS,
    PEERS,
    SYSTEM_PEERS,
    ServerSpec,
    hub_spec,
    hub_variant_spec,
    peer_spec,
    redis_server,
    start_server,
)
from ssehub.cli._bench_load import LoadClient
from ssehub.cli._bench_streams import raise_nofile

__all__ = ["main"]

HERE = Path(__file__).parent
SCENARIOS = ("idle", "fanout", "latency")
DEFAULT_SERVERS = ("ssehub", *PEERS)
#: Also ssehub on SQLite (1 and 2 workers) and Nchan (nginx-light +
#: libnginx-mod-nchan from apt), only when named.
ALL_SERVERS = (*DEFAULT_SERVERS, *HUB_VARIANTS, *SYSTEM_PEERS)


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in _csv(value)]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give counts like 1000,10000") from None
    if not sizes or any(n < 1 for n in sizes):
        raise click.BadParameter(f"{value!r}: give counts like 1000,10000")
    return sizes


def source_revision() -> str:
    """The commit of ``src/`` being measured, with ``+dirty`` for uncommitted changes."""
    root = HERE.parent

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.decode(errors="replace").strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", "src") else "")


HELP = """Hub benchmarks: ssehub serve beside sse-starlette and aiohttp-sse, same run.

\b
idle     N open streams held; server RSS per stream
fanout   N subscribers, K events in one burst; deliveries/s, every event checked
latency  N subscribers, events at a fixed rate (open loop); p50/p99/max latency
fanout and latency run with 1 publisher connection, then with 4 (--publishers)

\b
python -m benchmarks.bench_hub                 # a few minutes on 2 cores
python -m benchmarks.bench_hub --full          # 10,000 idle; fan-out 1,000 and 10,000
python -m benchmarks.bench_hub --servers ssehub --nodes 2 --redis
"""


@click.command(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--servers",
    default=",".join(DEFAULT_SERVERS),
    show_default=True,
    help=f"Servers to run, comma-separated, from: {', '.join(ALL_SERVERS)}.",
)
@click.option(
    "--scenarios",
    "scenario_names",
    default=",".join(SCENARIOS),
    show_default=True,
    help="Scenarios to run, comma-separated.",
)
@click.option(
    "--full",
    is_flag=True,
    help="The issue's sizes: --streams 10000 --fanout 1000,10000 --seconds 10.",
)
@click.option("--streams", type=int, default=None, help="idle: streams to hold [2000].")
@click.option(
    "--hold", type=float, default=5.0, show_default=True, help="idle: seconds to hold them."
)
@click.option(
    "--fanout",
    "fanout_sizes",
    default=None,
    help="fanout: subscriber counts, comma-separated [1000].",
)
@click.option(
    "--events",
    type=int,
    default=None,
    help="fanout: events published per run [a million deliveries: 1,000,000 / subscribers, "
    "between 100 and 1000].",
)
@click.option(
    "--publish-window",
    type=int,
    default=None,
    help="fanout: publishes in flight at once [no limit: one pipelined burst; "
    "1: each waits for the previous 201].",
)
@click.option(
    "--publishers",
    default="1,4",
    show_default=True,
    help="fanout, latency: concurrent publisher connections, comma-separated (a run "
    "for each); with several, each publisher's own order is checked.",
)
@click.option(
    "--latency-subscribers",
    type=int,
    default=1000,
    show_default=True,
    help="latency: subscribers.",
)
@click.option(
    "--rate",
    type=float,
    default=100.0,
    show_default=True,
    help="latency: events published per second.",
)
@click.option("--seconds", type=float, default=None, help="latency: seconds of publishing [5].")
@click.option(
    "--drain",
    type=float,
    default=60.0,
    show_default=True,
    help="latency: seconds to wait for late deliveries after the last publish.",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="fanout: seconds to wait for every delivery [30 + N·K/5000].",
)
@click.option(
    "--repeat",
    type=int,
    default=1,
    show_default=True,
    help="Runs per server and scenario; tables show the median.",
)
@click.option(
    "--client-procs",
    type=int,
    default=1,
    show_default=True,
    help="Load-client processes holding the streams.",
)
@click.option("--hub-args", default="", help="Extra arguments for `ssehub serve` (quoted).")
@click.option(
    "--nodes",
    type=int,
    default=1,
    show_default=True,
    help="ssehub processes behind the load client (needs a shared --store).",
)
@click.option("--store", default=None, help="ssehub --store URL (default: memory).")
@click.option(
    "--redis",
    "use_redis",
    is_flag=True,
    help="Start a private redis-server and use it as ssehub's store.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=HERE / "results",
    show_default=True,
    help="Directory for the JSON record.",
)
def cli(**opts: Any) -> None:
    run(opts, Console())


def _plan(opts: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, kind, kwargs)`` for every scenario run asked for."""
    full = opts["full"]
    streams = opts["streams"] or (10_000 if full else 2_000)
    fanouts = _sizes(opts["fanout_sizes"] or ("1000,10000" if full else "1000"))
    seconds = opts["seconds"] or (10.0 if full else 5.0)
    publishers = _sizes(opts["publishers"])
    rate = opts["rate"]
    wanted = _csv(opts["scenario_names"])
    for name in wanted:
        if name not in SCENARIOS:
            raise click.BadParameter(f"no scenario {name!r}; have {', '.join(SCENARIOS)}")
    plan: list[tuple[str, str, dict[str, Any]]] = []
    if "idle" in wanted:
        plan.append(
            (f"idle {streams:,} streams", "idle", {"streams": streams, "hold": opts["hold"]})
        )
    for n in fanouts if "fanout" in wanted else []:
        events = opts["events"] or min(1000, max(100, round(1_000_000 / n)))
        for p in publishers:
            kwargs = {
                "subscribers": n,
                "events": events,
                "timeout": opts["timeout"] or 30 + n * events / 5000,
                "window": opts["publish_window"],
                "publishers": p,
            }
            plan.append(
                (f"fanout {n:,} subscribers × {events} events, {_pubs(p)}", "fanout", kwargs)
            )
    if "latency" in wanted:
        n = opts["latency_subscribers"]
        for p in publishers:
            kwargs = {
                "subscribers": n,
                "rate": rate,
                "seconds": seconds,
                "drain": opts["drain"],
                "publishers": p,
            }
            label = f"latency {n:,} subscribers, {rate:g} events/s for {seconds:g} s, {_pubs(p)}"
            plan.append((label, "latency", kwargs))
    return plan


def _pubs(count: int) -> str:
    return "1 publisher" if count == 1 else f"{count} publishers"


def _specs(
    opts: dict[str, Any],
    store: str | None,
    companions: tuple[int, ...],
    console: Console,
    data_dir: Path,
) -> list[ServerSpec]:
    names = _csv(opts["servers"])
    for name in names:
        if name not in ALL_SERVERS:
            raise click.BadParameter(f"no server {name!r}; have {', '.join(ALL_SERVERS)}")
    if opts["nodes"] > 1 and store is None:
        raise click.BadParameter("--nodes > 1 needs a shared store: --store redis://… or --redis")
    specs = []
    for name in names:
        if name == "ssehub":
            args = shlex.split(opts["hub_args"])
            specs.append(hub_spec(args, opts["nodes"], store, companions))
        elif name in HUB_VARIANTS:
            specs.append(hub_variant_spec(name, shlex.split(opts["hub_args"]), data_dir))
        else:
            specs.append(peer_spec(name))
    if not specs:
        raise click.UsageError("no server to run")
    return specs


_RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "idle": _scenarios.idle,
    "fanout": _scenarios.fanout,
    "latency": _scenarios.latency,
}


def _one_run(
    kind: str, spec: ServerSpec, load: LoadClient, kwargs: dict[str, Any], logs: Path
) -> dict[str, Any]:
    with start_server(spec, logs) as server:
        return _RUNNERS[kind](server, load, **kwargs)


def _summary(kind: str, result: dict[str, Any]) -> str:
    if "error" in result:
        return f"[red]failed: {result['error']}[/]"
    loss = "" if result.get("zero_loss") else " [red]LOSS[/]"
    if kind == "idle":
        held = f"{result['held']:,}/{result['streams']:,}"
        return f"{held} held, {result['rss_per_stream_kb']:.1f} KB/stream{loss}"
    if kind == "fanout":
        return (
            f"{result['deliveries_per_s']:,.0f} deliveries/s "
            f"(server {result['server_cpu_pct']:.0f}%, client {result['client_cpu_pct']:.0f}%)"
            + loss
        )
    return (
        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"{result['achieved_rate']:.0f} published/s{loss}"
    )


def run(opts: dict[str, Any], console: Console) -> _report.Results:
    """Run every planned scenario against every server; print and record the results."""
    raise_nofile()
    plan = _plan(opts)
    revision = source_revision()
    console.print(f"measuring src at {revision}")
    out_dir: Path = opts["output"]
    logs = out_dir / "logs"
    results: _report.Results = {}
    with ExitStack() as stack:
        store: str | None = opts["store"]
        companions: tuple[int, ...] = ()
        if opts["use_redis"]:
            redis = stack.enter_context(redis_server(logs))
            store, companions = redis.url, (redis.pid,)
            console.print(f"redis-server for the hub at {store} (weighed and timed with it)")
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-hub-")))
        specs = _specs(opts, store, companions, console, data_dir)
        load = LoadClient(opts["client_procs"])
        stack.callback(lambda: load.shutdown())
        for label, kind, kwargs in plan:
            console.rule(label)
            results[label] = {spec.name: [] for spec in specs}
            for attempt in range(opts["repeat"]):
                for spec in specs:
                    try:
                        result = _one_run(kind, spec, load, kwargs, logs)
                    except (OSError, RuntimeError, TimeoutError) as exc:
                        result = {"error": f"{type(exc).__name__}: {exc}"[:500], "zero_loss": False}
                        load.shutdown()  # its streams may be half-open: start afresh
                        load = LoadClient(opts["client_procs"])
                    results[label][spec.name].append(result)
                    run_no = f" run {attempt + 1}/{opts['repeat']}" if opts["repeat"] > 1 else ""
                    console.print(f"  {spec.name:<14}{run_no} {_summary(kind, result)}")
    _report.render(results, console, opts["client_procs"])
    checks = _report.goal_checks(results)
    _report.render_goals(checks, console)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in opts.items()}
    settings["servers_run"] = [spec.description or spec.name for spec in specs]
    settings["src_revision"] = revision
    if source_revision() != revision:
        console.print(f"[yellow]src/ changed during the run (now {source_revision()})[/]")
        settings["src_revision_after"] = source_revision()
    path = _report.write_json(results, checks, settings, out_dir)
    console.print(f"results written to {path}")
    return results


def main(argv: list[str] | None = None) -> int:
    """Run as ``python -m benchmarks.bench_hub [OPTIONS]``; returns the exit status."""
    try:
        cli.main(args=argv, prog_name="python -m benchmarks.bench_hub", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
