"""Run a :class:`HubApp` under uvicorn, with a graceful, storm-free shutdown.

On SIGTERM or Ctrl+C the hub first *drains*: every stream is sent a
``retry:`` drawn from a jittered range and ended, so clients come back spread
over seconds instead of all at once; uvicorn then stops as usual.  This is done
by subclassing ``uvicorn.Server`` and overriding its documented
``handle_exit`` hook — uvicorn itself is not patched.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import resource
from collections.abc import Sequence
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ..hub import StoredEvent, open_backend
from ._app import HubApp
from ._plugin import Plugin
from ._settings import ServerSettings
from ._workers import WorkerApp, check_workers, run_workers

__all__ = ["check_store", "raise_open_file_limit", "run"]

logger = logging.getLogger("ssehub.server")


class _HubServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, hub_app: HubApp) -> None:
        super().__init__(config)
        self.hub_app = hub_app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = getattr(self, "_ssehub_loop", None)
        if loop is not None and not self.should_exit:
            loop.call_soon_threadsafe(self._drain)
        super().handle_exit(sig, frame)

    def _drain(self) -> None:
        count = self.hub_app.hub.drain()
        logger.info("draining: told %d streams to reconnect later", count)

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


def run(
    settings: ServerSettings,
    *,
    plugins: Sequence[Plugin] = (),
) -> None:
    """Serve the hub (with ``plugins``) until SIGTERM/SIGINT; blocks.

    With ``settings.workers`` above 1, ``_workers.run_workers`` serves the port
    from that many processes (each builds its own app); ``ValueError`` if the
    store can't be shared.
    """
    workers = check_workers(settings)
    raise_open_file_limit()
    tune_garbage_collector()
    hub_app = HubApp(settings, plugins=plugins) if workers == 1 else None
    config = uvicorn.Config(
        hub_app or WorkerApp(settings, plugins),
        log_config=_log_config(settings.log_level),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,
        backlog=4096,
        server_header=False,
        proxy_headers=False,
    )
    if hub_app is None:
        run_workers(config, workers)
        return
    server = _HubServer(config, hub_app)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits 3 when it can't bind: ssehub says 1
        raise SystemExit(0 if exc.code in (0, None) else 1) from None
    if not server.started:
        raise SystemExit(1)
