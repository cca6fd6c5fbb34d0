"""Run a :class:`HubApp` under uvicorn, bounded, with a graceful, storm-free shutdown.

The HTTP layer is uvicorn's httptools protocol with ssehub's limits
(:mod:`ssehub.server._http`), passed as ``uvicorn.Config(http=...)``; the
connection cap is kept below the process's descriptor limit.

On SIGTERM or Ctrl+C the hub first *drains*: every stream is sent a
``retry:`` drawn from a jittered range and ended, so clients come back spread
over seconds instead of all at once.  While responses finish (at most
``drain_timeout`` seconds) the server keeps accepting and answers every new
request ``503 shutting_down``; a response still unfinished then (a client that
stopped reading) is dropped, and uvicorn stops as usual.  This is done by
subclassing ``uvicorn.Server`` and overriding its ``handle_exit`` and
``shutdown`` hooks — uvicorn itself is not patched.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import gc
import logging
import math
import resource
from collections.abc import Sequence
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ..hub import StoredEvent, open_backend
from ._app import HubApp
from ._auth import LOOPBACK_NAMES, is_loopback
from ._http import (
    BoundedHttpProtocol,
    ConnectionGate,
    HttpLimits,
    bounded_protocol,
    open_descriptor_count,
    plan_connection_limits,
)
from ._plugin import Plugin
from ._settings import ServerSettings
from ._workers import WORKER_PROTOCOL, WorkerApp, check_workers, run_workers

__all__ = ["check_store", "raise_open_file_limit", "run"]

logger = logging.getLogger("ssehub.server")

_DRAIN_STEP = 0.05


class _HubServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        hub_app: HubApp,
        gate: ConnectionGate,
        *,
        drain_timeout: float = 2.0,
    ) -> None:
        super().__init__(config)
        self.hub_app = hub_app
        self.gate = gate
        self.drain_timeout = drain_timeout

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = getattr(self, "_ssehub_loop", None)
        if loop is not None and not self.should_exit:
            loop.call_soon_threadsafe(self._drain)
        super().handle_exit(sig, frame)

    def _drain(self) -> None:
        self.gate.draining = True
        count = self.hub_app.hub.drain()
        logger.info("draining: told %d streams to reconnect later", count)

    def _unfinished(self) -> list[BoundedHttpProtocol]:
        return [
            conn
            for conn in self.server_state.connections
            if isinstance(conn, BoundedHttpProtocol) and conn.busy()
        ]

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        """Finish the drain while still accepting (503 ``shutting_down``), then stop."""
        self.gate.draining = True
        # Look every 50 ms whether every response has ended and its bytes were taken.
        for _ in range(max(1, math.ceil(self.drain_timeout / _DRAIN_STEP))):
            if not self._unfinished() or self.force_exit:
                break
            await asyncio.sleep(_DRAIN_STEP)
        left = self._unfinished()
        if left:
            for conn in left:
                conn.drop()
            timeout = self.drain_timeout
            logger.info(
                "drain: dropped %d connections whose clients did not take their last bytes "
                "within %g s",
                len(left),
                timeout,
            )
        await super().shutdown(sockets)

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._ssehub_loop = asyncio.get_running_loop()
        await super().startup(sockets)  # type: ignore[arg-type]
        # Everything alive after start-up (modules, the app, the store) lives as long as
        # the process: keep it out of every future garbage collection.
        gc.freeze()


class _NoListener:
    def on_event(self, event: StoredEvent) -> None:
        pass

    def on_gap(self) -> None:
        pass


def check_store(settings: ServerSettings) -> None:
    """Open and close the configured store once, so a bad one fails before serving.

    Raises :class:`~ssehub.errors.HubError` (e.g. ``BackendUnavailableError``) with
    a message naming the problem.
    """

    async def probe() -> None:
        backend = open_backend(settings.store, settings.retention)
        await backend.start(_NoListener())
        await backend.aclose()

    asyncio.run(probe())


def tune_garbage_collector() -> None:
    """Collect the young generation less often.

    Every open stream holds a few dozen long-lived objects; with CPython's default
    threshold (700 allocations) the collector keeps walking them, and its full
    collections were the p99 tail of delivery latency in ``bench_hub``.  Cycles are
    still collected, just in fewer, larger young collections.
    """
    gc.set_threshold(50_000, 20, 100)


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (each stream is a socket)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft


def _log_config(log_level: str) -> dict[str, Any]:
    """uvicorn's logging setup, with ssehub's own loggers on the same handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["ssehub"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    return config


def http_limits(settings: ServerSettings, descriptor_limit: int) -> HttpLimits:
    """The HTTP bounds of ``settings``, the connection cap fitted to ``descriptor_limit``."""
    cap, ceiling = plan_connection_limits(
        settings.max_connections, descriptor_limit, open_descriptor_count()
    )
    return HttpLimits(
        max_connections=cap,
        connection_ceiling=ceiling,
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        header_timeout=settings.header_timeout,
        idle_timeout=settings.idle_timeout,
    )


def served_settings(settings: ServerSettings) -> ServerSettings:
    """``settings`` as ``ssehub serve`` applies them: bound to loopback with no
    ``--allowed-host``, only the loopback names are served (no DNS rebinding).

    A ``HubApp`` mounted in your app checks ``Host`` only when told to: it
    can't know the names it is reached by.
    """
    if not settings.allowed_hosts and is_loopback(settings.host):
        return dataclasses.replace(settings, allowed_hosts=tuple(sorted(LOOPBACK_NAMES)))
    return settings


def run(
    settings: ServerSettings,
    *,
    plugins: Sequence[Plugin] = (),
) -> None:
    """Serve the hub (with ``plugins``) until SIGTERM/SIGINT; blocks.

    With ``settings.workers`` above 1, ``_workers.run_workers`` serves the port
    from that many processes (each builds its own app and its own bounded HTTP
    protocol); ``ValueError`` if the store can't be shared.
    """
    workers = check_workers(settings)
    descriptor_limit = raise_open_file_limit()
    tune_garbage_collector()
    served = served_settings(settings)
    limits = http_limits(settings, descriptor_limit)
    if limits.max_connections < settings.max_connections:
        logger.warning(
            "--max-connections %d cannot be honoured with %d open files (ulimit -n): "
            "serving at most %d connections",
            settings.max_connections,
            descriptor_limit,
            limits.max_connections,
        )
    common: dict[str, Any] = {
        "ws": "none",
        "log_config": _log_config(settings.log_level),
        "host": settings.host,
        "port": settings.port,
        "lifespan": "on",
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "timeout_graceful_shutdown": 10,
        "backlog": 4096,
        "server_header": False,
        "proxy_headers": False,
    }
    if workers > 1:
        worker_app = WorkerApp(served, plugins, limits)
        # A worker drains from its app's signal handler (every stream gets its retry
        # and ends) while uvicorn closes its listener; what is still unfinished
        # ``drain_timeout`` later is cancelled, so each worker exits within it.
        common["timeout_graceful_shutdown"] = settings.hub.drain_timeout
        run_workers(uvicorn.Config(worker_app, http=WORKER_PROTOCOL, **common), workers)
        return
    hub_app = HubApp(served, plugins=plugins, install_signal_handlers=False)
    gate = ConnectionGate(limits)
    config = uvicorn.Config(hub_app, http=bounded_protocol(gate), **common)
    server = _HubServer(config, hub_app, gate, drain_timeout=settings.hub.drain_timeout)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits 3 when it can't bind: ssehub says 1
        raise SystemExit(0 if exc.code in (0, None) else 1) from None
    if not server.started:
        raise SystemExit(1)
