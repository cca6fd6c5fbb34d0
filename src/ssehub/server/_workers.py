"""``ssehub serve --workers N``: N processes on one port, by uvicorn's own supervisor.

The parent binds the port once and runs ``uvicorn.supervisors.Multiprocess``:
it spawns the workers (each a fresh interpreter with its own event loop,
accepting from the one shared socket), restarts a worker that dies, and on
SIGTERM/SIGINT sends each worker SIGTERM and waits for it.

Each worker builds its own :class:`HubApp` from what :class:`WorkerApp`
carries across the spawn (the settings and the plug-ins, both picklable), so
each worker opens its own connection to the store; the store's live feed
makes every worker hear every event (SQLite: :mod:`ssehub.hub.backends._sqlite_feed`;
Redis: the log follower).  A worker drains on SIGTERM through the app's own
signal chaining (``install_signal_handlers=True``): its streams get a jittered
``retry:`` and end, then uvicorn stops.  ``/healthz`` answers for the worker
that accepted the request and says which (``pid``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.supervisors import Multiprocess

from ..hub import parse_store_url
from ._app import HubApp
from ._http import ConnectionGate, HttpLimits, bind_worker_gate
from ._metrics import MULTIPROC_ENV
from ._plugin import Plugin
from ._settings import ServerSettings

__all__ = ["WORKER_PROTOCOL", "WorkerApp", "check_workers", "run_workers", "worker_count"]


def worker_count(value: str) -> int:
    """``--workers``: a positive number, or ``auto`` (the cores this process may use)."""
    if value.strip().lower() == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"--workers must be a number or auto, not {value!r}") from None
    if not 1 <= count <= 1024:
        raise ValueError(f"--workers must be between 1 and 1024, not {count}")
    return count


def check_workers(settings: ServerSettings) -> int:
    """The worker count, refusing a store that processes can't share (ValueError)."""
    count = worker_count(settings.workers)
    if count > 1 and parse_store_url(settings.store).kind == "memory":
        raise ValueError(
            "--workers > 1 needs a store the processes share (sqlite:PATH or redis://…): "
            "each process would have its own memory store, and subscribers would miss events"
        )
    return count


#: uvicorn's ``http=`` for workers: an import path, since a protocol class bound to
#: one gate (``bounded_protocol``) can't cross the spawn.  Each worker binds it to a
#: gate of its own when its :class:`WorkerApp` arrives (``__setstate__``).
WORKER_PROTOCOL = "ssehub.server._http:WorkerHttpProtocol"


class WorkerApp:
    """The ASGI app of one worker: builds its :class:`HubApp` in the worker, on first use.

    It carries the HTTP limits across the spawn too: arriving in a worker, it binds
    the worker's bounded protocol (:data:`WORKER_PROTOCOL`) to a gate of its own,
    so every worker enforces the same header, timeout and connection bounds.
    """

    def __init__(
        self, settings: ServerSettings, plugins: Sequence[Plugin], limits: HttpLimits
    ) -> None:
        self.settings = settings
        self.plugins = tuple(plugins)
        self.limits = limits
        self._app: HubApp | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "plugins": self.plugins, "limits": self.limits}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"], state["plugins"], state["limits"])  # type: ignore[misc]
        bind_worker_gate(ConnectionGate(self.limits))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            from ._run import raise_open_file_limit, tune_garbage_collector

            raise_open_file_limit()
            tune_garbage_collector()
            app = self._app = HubApp(
                self.settings, plugins=self.plugins, install_signal_handlers=True
            )
        if scope["type"] == "lifespan":
            await app(scope, receive, _freeze_after_startup(send))
            return
        await app(scope, receive, send)


def _freeze_after_startup(send: Send) -> Send:
    """Keep everything alive after start-up out of future collections (as ``run`` does)."""

    async def wrapped(message: Any) -> None:
        await send(message)
        if message.get("type") == "lifespan.startup.complete":
            gc.freeze()

    return wrapped


def run_workers(config: uvicorn.Config, count: int) -> None:
    """Serve ``config`` (its app a :class:`WorkerApp`) from ``count`` processes; blocks.

    Unless ``PROMETHEUS_MULTIPROC_DIR`` is already set, the workers share a fresh
    directory of this run for their metrics (removed at exit), so ``/metrics``
    and ``/healthz`` can sum over them (:mod:`ssehub.server._metrics`).
    """
    config.workers = count
    with contextlib.ExitStack() as stack:
        if not os.environ.get(MULTIPROC_ENV):
            path = stack.enter_context(tempfile.TemporaryDirectory(prefix="ssehub-metrics-"))
            os.environ[MULTIPROC_ENV] = path  # read by each spawned worker at import
            stack.callback(os.environ.pop, MULTIPROC_ENV, None)
        sock = config.bind_socket()
        stack.callback(sock.close)
        Multiprocess(config, sockets=[sock]).run()
