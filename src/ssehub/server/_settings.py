"""Settings of a hub server: one frozen dataclass, filled from CLI flags or env vars.

Durations are float seconds (``heartbeat_interval``, ``write_timeout``);
``retry`` is integer milliseconds as on the wire; sizes are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..hub import DEFAULT_STORE, HubConfig, Retention

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``ssehub serve`` can be told."""

    host: str = "127.0.0.1"
    port: int = 8004
    #: ``memory``, ``sqlite:PATH`` or ``redis://HOST:PORT/DB``.
    store: str = DEFAULT_STORE
    heartbeat_interval: float = 15.0
    retry: int = 3000
    retention_events: int | None = 10_000
    retention_age: float | None = 24 * 3600.0
    #: Largest publish body accepted (413 above it).
    max_body_size: int = 1024 * 1024
    #: Most connections open at once, every connection counted (503 with Retry-After
    #: above it); ``ssehub serve`` lowers it to fit the open-file limit.
    max_connections: int = 20_000
    max_queue_events: int = 1000
    max_queue_bytes: int = 4 * 1024 * 1024
    write_timeout: float = 30.0
    #: Live events within this long of the previous delivery share one write.
    flush_interval: float = 0.01
    #: Origins allowed by CORS; empty means CORS is off (same-origin only).
    cors_origins: tuple[str, ...] = ()
    #: Seconds between the events of the seed's demo on ``GET /``.
    demo_interval: float = 1.0
    #: Files followed by the log-tail demo (``--tail``); nothing else can be read.
    tail_files: tuple[str, ...] = ()
    #: An OpenAI-compatible chat completions endpoint for the chat demo.
    llm_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    #: Run the built-in ticker publisher of the stock demo.
    ticker: bool = True
    shutdown_retry_min: int = 1000
    shutdown_retry_max: int = 10_000
    extra: dict[str, str] = field(default_factory=dict)
    #: Most bytes in one request's line and headers (431 above it).
    max_header_bytes: int = 64 * 1024
    #: Most header fields in one request (431 above it).
    max_header_count: int = 100
    #: A request's headers must arrive within this long (408; an idle new connection is closed).
    header_timeout: float = 10.0
    #: A kept-alive connection with no request is closed after this long.
    idle_timeout: float = 5.0
    #: On SIGTERM, responses get this long to finish (new requests get 503); then they are dropped.
    drain_timeout: float = 2.0

    def retention(self) -> Retention:
        return Retention(max_events=self.retention_events, max_age=self.retention_age)

    def hub_config(self) -> HubConfig:
        return HubConfig(
            heartbeat_interval=self.heartbeat_interval,
            retry=self.retry,
            max_queue_events=self.max_queue_events,
            max_queue_bytes=self.max_queue_bytes,
            write_timeout=self.write_timeout,
            flush_interval=self.flush_interval,
            shutdown_retry_min=self.shutdown_retry_min,
            shutdown_retry_max=self.shutdown_retry_max,
        )
