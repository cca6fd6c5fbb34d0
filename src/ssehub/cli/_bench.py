"""``ssehub bench``: fan-out throughput, latency, loss and order, against a URL or a hub it starts.

The engine is the one ``python -m benchmarks.bench_hub`` uses; :mod:`._bench_run`
gives the method.  This module is the command: options, the spawned hub, a
progress bar on stderr (only on a terminal, not with ``-q``), and the result
on stdout as a table or, with ``--json``, one JSON object.  Exit codes: 0 every event reached every
subscriber once and in order; 1 the hub could not be reached or used, or the
check failed (the result is still printed); 2 bad usage; 130 Ctrl+C.
"""

from __future__ import annotations

import dataclasses
import json

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..hub import parse_store_url, validate_topic
from ._bench_run import BenchConfig, BenchError, BenchResult, Snapshot, run_bench
from ._output import (
    BadUsage,
    Failure,
    OneLineCommand,
    guarded,
    printable,
    stream_url,
    terminal_console,
)
from ._params import DURATION
from ._spawn import spawned_hub

__all__ = ["bench"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def result_table(result: BenchResult, hub: str) -> Table:
    """The result as a two-column rich table."""
    table = Table(title="ssehub bench", show_header=False, title_justify="left")
    table.add_column("measure", style="bold")
    table.add_column("value", justify="right")
    ok = result.ok
    rows = [
        ("hub", hub),
        ("topic", result.topic),
        ("subscribers", f"{result.subscribers:,}"),
        ("events", f"{result.events:,} × {result.size} bytes"),
        (
            "published",
            f"{result.published:,} in {result.publish_seconds:.2f} s "
            f"({result.publish_rate:,.0f}/s)",
        ),
        (
            "delivered",
            f"{result.delivered:,} of {result.expected:,} in {result.deliver_seconds:.2f} s "
            f"({result.delivery_rate:,.0f}/s)",
        ),
        ("latency p50", _ms(result.latency_p50_ms)),
        ("latency p99", _ms(result.latency_p99_ms)),
        ("latency max", _ms(result.latency_max_ms)),
        ("lost", f"{result.lost:,}"),
        ("duplicates", f"{result.duplicates:,}"),
        ("out of order", f"{result.gaps:,}"),
        ("resets", f"{result.resets:,}"),
        ("reconnects", f"{result.reconnects:,}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for error in result.errors:
        table.add_row("error", printable(error), style="red")
    table.add_row("result", "OK" if ok else "FAILED", style="green" if ok else "red bold")
    return table


def _verdict(result: BenchResult) -> str:
    problems = [
        f"{count:,} {what}"
        for count, what in (
            (result.events - result.published, "events not published"),
            (result.lost, "deliveries lost"),
            (result.duplicates, "duplicates"),
            (result.gaps, "out of order"),
            (result.resets, "resets"),
            (len(result.errors), "subscriber errors"),
        )
        if count
    ]
    verdict = "bench check failed: " + ", ".join(problems)
    return f"{verdict}; first error: {result.errors[0]}" if result.errors else verdict


class _ProgressBar:
    """Three bars on stderr: subscribers connected, events published, deliveries."""

    def __init__(self, console: Console, config: BenchConfig, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.ready = self.progress.add_task("connected", total=config.subscribers)
        self.published = self.progress.add_task("published", total=config.events)
        self.delivered = self.progress.add_task(
            "delivered", total=config.subscribers * config.events
        )

    def update(self, snapshot: Snapshot) -> None:
        self.progress.update(self.ready, completed=snapshot.ready)
        self.progress.update(self.published, completed=snapshot.published)
        self.progress.update(self.delivered, completed=snapshot.delivered)


_EXAMPLES = """
\b
Examples:
  ssehub bench                                   # starts its own hub (memory store)
  ssehub bench -s 200 -k 2000 --rate 500         # 200 subscribers, 2000 events at 500/s
  ssehub bench --store sqlite:/tmp/bench.db      # the spawned hub keeps history on disk
  ssehub bench --url http://localhost:8004 --json | jq .delivery_rate
"""


@click.command(cls=OneLineCommand, epilog=_EXAMPLES)
@click.option("--url", default=None, help="Benchmark the hub at this base URL.")
@click.option("--spawn", is_flag=True, help="Start a hub for the run (the default without --url).")
@click.option(
    "--store",
    default="memory",
    show_default=True,
    help="History store of the spawned hub (memory, sqlite:PATH, redis://…).",
)
@click.option(
    "-s",
    "--subscribers",
    type=click.IntRange(1),
    default=50,
    show_default=True,
    help="Subscribers on the topic.",
)
@click.option(
    "-k",
    "--events",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="Events to publish.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0),
    default=0,
    help="Events per second (0: as fast as the hub answers).",
)
@click.option(
    "--size",
    type=click.IntRange(1, 1_000_000),
    default=64,
    show_default=True,
    help="Bytes of data per event.",
)
@click.option("--topic", default=None, help="Topic to use (default: a fresh bench/… one).")
@click.option(
    "--drain-timeout",
    type=DURATION,
    default="10s",
    show_default=True,
    help="After the last publish, stop once no delivery came for this long.",
)
@click.option(
    "--procs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes holding the subscribers' streams.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@guarded
def bench(
    url: str | None,
    spawn: bool,
    store: str,
    subscribers: int,
    events: int,
    rate: float,
    size: int,
    topic: str | None,
    drain_timeout: float,
    procs: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Measure fan-out: SUBSCRIBERS streams on one topic, EVENTS published.

    Reports deliveries per second and publish-to-receive latency (p50, p99,
    max), and checks that every subscriber got every event exactly once and
    in order (a stream the hub closes is resumed with Last-Event-ID). Runs
    against --url, or a hub it starts itself (--spawn, the default).

    Exit codes: 0 no loss, no duplicate, in order; 1 hub unreachable or the
    check failed; 2 bad usage; 130 Ctrl+C.
    """
    if url is not None and spawn:
        raise BadUsage("choose --url or --spawn, not both")
    try:
        if topic is not None:
            validate_topic(topic)
        if url is None:
            parse_store_url(store)  # checks the store URL's form; builds nothing
    except ValueError as exc:
        raise BadUsage(str(exc)) from None
    stderr = terminal_console(stderr=True)

    def measure(base: str) -> BenchResult:
        config = BenchConfig(
            url=base,
            subscribers=subscribers,
            events=events,
            rate=rate or None,
            size=size,
            drain_timeout=drain_timeout,
            procs=procs,
        )
        if topic:
            config = dataclasses.replace(config, topic=topic)
        bar = _ProgressBar(stderr, config, enabled=not quiet and stderr.is_terminal)
        with bar.progress:
            return run_bench(config, on_progress=bar.update)

    try:
        if url is not None:
            hub = stream_url(url)
            result = measure(hub)
        else:
            hub_args = [
                "--store",
                store,
                "--no-ticker",
                "--log-level",
                "warning",
                "--retention-events",
                str(max(10_000, events)),
                "--max-connections",
                str(max(20_000, subscribers + 100)),
            ]
            with spawned_hub(hub_args) as spawned:
                hub = f"spawned ({store})"
                result = measure(spawned)
    except BenchError as exc:
        raise Failure(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        terminal_console().print(result_table(result, hub))
    if not result.ok:
        raise Failure(_verdict(result))
