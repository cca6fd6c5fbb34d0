"""Typed settings of the demos: one frozen dataclass, flags derived from it.

Durations are float seconds.  Like :class:`~ssehub.server.ServerSettings`,
each field's metadata (:func:`~ssehub.server.option`) gives ``ssehub serve``
its option and ``SSEHUB_*`` variable; the TOML config file's ``[demos]``
table holds the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..server import option

__all__ = ["DemoSettings"]


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """Everything the demos can be told."""

    #: ``None``: on for a loopback ``--host`` (see :func:`~ssehub.demos.demos_by_default`).
    enabled: bool | None = field(
        default=None,
        metadata=option(
            "Serve the demo pages and publishers (GET / stream, /chat, /ticker, /logs, "
            "/dashboard). Default: on for a loopback --host, off otherwise.",
            flag="--demos",
        ),
    )
    demo_interval: float = field(
        default=1.0,
        metadata=option("Pause between the events of the demo stream on GET /.", unit="duration"),
    )
    tail_files: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "Follow FILE like tail -F for the /logs demo (repeatable; SSEHUB_TAIL separates "
            "several files with ':'). Only a regular file of FILE's directory, owned by the "
            "owner of the first file opened, is read: a symlink (never followed), FIFO, "
            "device or directory found at FILE, e.g. at rotation, is refused and logged.",
            flag="--tail",
            metavar="FILE",
            path=True,
        ),
    )
    tail_lines: int = field(
        default=10,
        metadata=option(
            "Publish the last N lines of each --tail file at start, like tail -n "
            "(read back at most 1 MiB per file; 0: only new lines).",
            metavar="N",
            minimum=0,
            maximum=10_000,
        ),
    )
    tail_interval: float = field(
        default=0.25, metadata=option("How often the /logs demo polls its files.", unit="duration")
    )
    llm_url: str | None = field(
        default=None,
        metadata=option(
            "OpenAI-compatible chat completions URL for the /chat demo (API key from "
            "OPENAI_API_KEY). Default: a built-in simulated responder."
        ),
    )
    llm_model: str = field(default="gpt-4o-mini", metadata=option("Model name sent to --llm-url."))
    llm_connect_timeout: float = field(
        default=10.0, metadata=option("Connect timeout towards --llm-url.", unit="duration")
    )
    llm_read_timeout: float = field(
        default=60.0, metadata=option("Read timeout towards --llm-url.", unit="duration")
    )
    chat_token_delay: float = field(
        default=0.04,
        metadata=option("Pause between the simulated responder's tokens.", unit="duration"),
    )
    chat_think_delay: float = field(
        default=0.4,
        metadata=option("Pause of each simulated 'thinking' step.", unit="duration"),
    )
    chat_max_seconds: float = field(
        default=600.0, metadata=option("Longest a chat answer may run.", unit="duration")
    )
    chat_max_running: int = field(
        default=256,
        metadata=option(
            "Most chat answers running at once on this hub (all clients together).",
            metavar="N",
            minimum=1,
            maximum=100_000,
        ),
    )
    chat_max_running_per_client: int = field(
        default=4,
        metadata=option(
            "Most chat answers running at once for one client: per browser session and "
            "per client address (more are answered 429).",
            metavar="N",
            minimum=1,
            maximum=10_000,
        ),
    )
    chat_reader_grace: float = field(
        default=30.0,
        metadata=option(
            "A chat answer that nobody reads, on any node, for this long is stopped "
            "upstream (its --llm-url request is cancelled).",
            unit="duration",
        ),
    )
    #: ``None``: on, except with a Redis store (every node would publish the same prices).
    ticker: bool | None = field(
        default=None,
        metadata=option(
            "Run the built-in stock ticker publisher. Default: on, except with a Redis store, "
            "where every node would publish the same prices (pass --ticker on one node)."
        ),
    )
    ticker_interval: float = field(
        default=1.0, metadata=option("Pause between the ticker's prices.", unit="duration")
    )
    stats_interval: float = field(
        default=1.0,
        metadata=option("Pause between the dashboard's samples.", unit="duration"),
    )

    def ticker_runs(self, store: str) -> bool:
        """Whether the ticker publishes, with ``store`` as the hub's store URL."""
        if self.ticker is not None:
            return self.ticker
        return not store.startswith(("redis", "unix"))
