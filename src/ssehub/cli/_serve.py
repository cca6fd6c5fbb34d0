"""``ssehub serve``: run the hub."""

from __future__ import annotations

import click

from ..hub import DEFAULT_STORE
from ._output import BadUsage, OneLineCommand
from ._params import DURATION, Duration

__all__ = ["serve"]


def _limit(value: int | None) -> int | None:
    return None if value is None or value <= 0 else value


@click.command(cls=OneLineCommand, context_settings={"show_default": True})
@click.option(
    "--host",
    default="127.0.0.1",
    envvar="SSEHUB_HOST",
    show_envvar=True,
    help="Interface to listen on (0.0.0.0 for every interface).",
)
@click.option(
    "--port",
    default=8004,
    type=click.IntRange(0, 65535),
    envvar="SSEHUB_PORT",
    show_envvar=True,
    help="TCP port.",
)
@click.option(
    "--store",
    default=DEFAULT_STORE,
    envvar="SSEHUB_STORE",
    show_envvar=True,
    metavar="STORE",
    help="History store: sqlite:PATH (durable), memory (lost on restart), or "
    "redis://HOST:PORT/DB (shared by several nodes).",
)
@click.option(
    "--heartbeat",
    default="15s",
    type=DURATION,
    envvar="SSEHUB_HEARTBEAT",
    show_envvar=True,
    help="Send a comment on idle streams this often (0 = never).",
)
@click.option(
    "--retry",
    default=3000,
    type=click.IntRange(0),
    envvar="SSEHUB_RETRY",
    show_envvar=True,
    help="Reconnection delay sent to clients on connect, in ms.",
)
@click.option(
    "--retention-events",
    default=10_000,
    type=int,
    envvar="SSEHUB_RETENTION_EVENTS",
    show_envvar=True,
    help="History kept per topic, in events (0 = unbounded).",
)
@click.option(
    "--retention-age",
    default="24h",
    type=Duration(allow_none=True),
    envvar="SSEHUB_RETENTION_AGE",
    show_envvar=True,
    help="History kept, by age (e.g. 30m, 24h, 7d; none = unbounded).",
)
@click.option(
    "--max-body",
    default=1024 * 1024,
    type=click.IntRange(1),
    envvar="SSEHUB_MAX_BODY",
    show_envvar=True,
    help="Largest publish body, in bytes.",
)
@click.option(
    "--max-connections",
    default=20_000,
    type=click.IntRange(1),
    envvar="SSEHUB_MAX_CONNECTIONS",
    show_envvar=True,
    help="Most connections open at once (every connection counts, streams too); "
    "more get 503 with Retry-After. Lowered, with a warning, to fit the open-file limit.",
)
@click.option(
    "--max-queue",
    default=1000,
    type=click.IntRange(1),
    envvar="SSEHUB_MAX_QUEUE",
    show_envvar=True,
    help="Events queued for one slow subscriber before it is closed (it then "
    "resumes from history).",
)
@click.option(
    "--max-queue-bytes",
    default=4 * 1024 * 1024,
    type=click.IntRange(1),
    envvar="SSEHUB_MAX_QUEUE_BYTES",
    show_envvar=True,
    help="Bytes queued for one slow subscriber before it is closed.",
)
@click.option(
    "--flush-interval",
    default="10ms",
    type=DURATION,
    envvar="SSEHUB_FLUSH_INTERVAL",
    show_envvar=True,
    help="Under load, live events this close together share one write per subscriber "
    "(0 = write each at once). The first event after a quiet spell is never delayed.",
)
@click.option(
    "--write-timeout",
    default="30s",
    type=DURATION,
    envvar="SSEHUB_WRITE_TIMEOUT",
    show_envvar=True,
    help="Drop a stream whose write is blocked this long.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    envvar="SSEHUB_CORS_ORIGINS",
    show_envvar=True,
    metavar="ORIGIN",
    help="Allow this origin by CORS (repeatable; '*' for any). Off by default.",
)
@click.option(
    "--tail",
    "tail_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    envvar="SSEHUB_TAIL",
    show_envvar=True,
    metavar="FILE",
    help="Follow FILE like tail -F for the /logs demo (repeatable).",
)
@click.option(
    "--llm-url",
    default=None,
    envvar="SSEHUB_LLM_URL",
    show_envvar=True,
    help="OpenAI-compatible chat completions URL for the /chat demo "
    "(API key from OPENAI_API_KEY). Default: a built-in simulated responder.",
)
@click.option(
    "--llm-model",
    default="gpt-4o-mini",
    envvar="SSEHUB_LLM_MODEL",
    show_envvar=True,
    help="Model name sent to --llm-url.",
)
@click.option(
    "--ticker/--no-ticker",
    default=None,
    envvar="SSEHUB_TICKER",
    show_envvar=True,
    show_default=False,
    help="Run the built-in stock ticker publisher. Default: on, except with a Redis store, "
    "where every node would publish the same prices (pass --ticker on one node).",
)
@click.option(
    "--demo-interval",
    default="1s",
    type=DURATION,
    envvar="SSEHUB_DEMO_INTERVAL",
    show_envvar=True,
    help="Pause between the events of the demo stream on GET /.",
)
@click.option(
    "--log-level",
    default="info",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    envvar="SSEHUB_LOG_LEVEL",
    show_envvar=True,
    help="Log verbosity.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    envvar="SSEHUB_ACCESS_LOG",
    show_envvar=True,
    help="Log every request.",
)
@click.option(
    "--max-header-bytes",
    default=64 * 1024,
    type=click.IntRange(1024),
    envvar="SSEHUB_MAX_HEADER_BYTES",
    show_envvar=True,
    help="Largest request line and headers of one request, in bytes (431 above it).",
)
@click.option(
    "--max-header-count",
    default=100,
    type=click.IntRange(1),
    envvar="SSEHUB_MAX_HEADER_COUNT",
    show_envvar=True,
    help="Most header fields in one request (431 above it).",
)
@click.option(
    "--header-timeout",
    default="10s",
    type=DURATION,
    envvar="SSEHUB_HEADER_TIMEOUT",
    show_envvar=True,
    help="A request's headers must arrive within this long (408); a new connection "
    "that sends nothing is closed after it.",
)
@click.option(
    "--idle-timeout",
    default="5s",
    type=DURATION,
    envvar="SSEHUB_IDLE_TIMEOUT",
    show_envvar=True,
    help="Close a kept-alive connection that sends no new request for this long.",
)
@click.option(
    "--drain-timeout",
    default="2s",
    type=DURATION,
    envvar="SSEHUB_DRAIN_TIMEOUT",
    show_envvar=True,
    help="On SIGTERM, responses get this long to finish while new requests get "
    "503 shutting_down; then the rest are dropped and the hub stops.",
)
def serve(
    host: str,
    port: int,
    store: str,
    heartbeat: float,
    retry: int,
    retention_events: int,
    retention_age: float | None,
    max_body: int,
    max_connections: int,
    max_queue: int,
    max_queue_bytes: int,
    write_timeout: float,
    flush_interval: float,
    cors_origins: tuple[str, ...],
    tail_files: tuple[str, ...],
    llm_url: str | None,
    llm_model: str,
    ticker: bool | None,
    demo_interval: float,
    log_level: str,
    access_log: bool,
    max_header_bytes: int,
    max_header_count: int,
    header_timeout: float,
    idle_timeout: float,
    drain_timeout: float,
) -> None:
    """Run the hub: topics, durable history, exact resume, demos.

    \b
    Examples:
      ssehub serve                                  # http://127.0.0.1:8004, history in ./ssehub.db
      ssehub serve --host 0.0.0.0 --store memory    # nothing kept on disk
      ssehub serve --store redis://localhost:6379/0 # share topics with other nodes
      ssehub serve --tail /var/log/syslog           # the /logs demo follows that file
    \b
    Then:
      curl -N http://localhost:8004                 # the seed's demo stream
      curl -N http://localhost:8004/topics/news     # subscribe to a topic
      curl -d 'hello' http://localhost:8004/topics/news   # publish to it
    """
    from ..errors import HubError
    from ..server import Settings
    from ..server._run import check_store, run

    try:
        from ..hub import open_backend

        open_backend(store)
    except ValueError as exc:
        raise BadUsage(f"--store: {exc}") from exc
    settings = Settings(
        host=host,
        port=port,
        store=store,
        heartbeat_interval=heartbeat,
        retry=retry,
        retention_events=_limit(retention_events),
        retention_age=retention_age,
        max_body_size=max_body,
        max_connections=max_connections,
        max_queue_events=max_queue,
        max_queue_bytes=max_queue_bytes,
        write_timeout=write_timeout,
        flush_interval=flush_interval,
        cors_origins=tuple(o for origin in cors_origins for o in origin.split(",") if o),
        tail_files=tail_files,
        llm_url=llm_url,
        llm_model=llm_model,
        ticker=ticker if ticker is not None else not store.startswith(("redis", "unix")),
        demo_interval=demo_interval,
        max_header_bytes=max_header_bytes,
        max_header_count=max_header_count,
        header_timeout=header_timeout,
        idle_timeout=idle_timeout,
        drain_timeout=drain_timeout,
    )
    try:
        check_store(settings)
    except HubError as exc:
        raise click.ClickException(f"cannot open the store {store!r}: {exc}") from exc
    run(settings, log_level=log_level, access_log=access_log)
