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
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

from ..hub import parse_store_url
from ._app import HubApp
from ._http import ConnectionGate, HttpLimits, bind_worker_gate
from ._metrics import MULTIPROC_ENV
from ._plugin import Plugin
from ._settings import ServerSettings

logger = logging.getLogger("uvicorn.error")

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
    """The worker count, refusing a store that processes can't share (ValueError).

    Also refuses an ``--admin-port`` that can't work: with several workers (each
    would bind it; use admin tokens there) or equal to ``--port``.
    """
    count = worker_count(settings.workers)
    if count > 1 and parse_store_url(settings.store).kind == "memory":
        raise ValueError(
            "--workers > 1 needs a store the processes share (sqlite:PATH or redis://…): "
            "each process would have its own memory store, and subscribers would miss events"
        )
    if count > 1 and (settings.certfile or settings.keyfile or settings.dev_cert):
        raise ValueError(
            "--workers > 1 serves plain HTTP only: run one process per TLS port, "
            "or put the workers behind a TLS proxy"
        )
    if settings.admin_port is not None:
        if count > 1:
            raise ValueError(
                "--admin-port works with one process; with --workers > 1 use admin tokens "
                "on the main port"
            )
        if settings.admin_port == settings.port:
            raise ValueError("--admin-port must differ from --port")
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


def _reuse_port_socket(host: str, port: int, *, alone: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not listening yet).

    ``alone``: first make sure nothing listens on the port (``OSError`` if
    something does) — else a second ``ssehub serve`` of the same user would
    silently join the first one's group and take half of its connections.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if alone:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


#: Seconds a worker may take to answer the supervisor's ping before it is replaced.
HEALTHCHECK_TIMEOUT = 60

#: Linux spreads the connections of one port over the listening sockets of a
#: ``SO_REUSEPORT`` group by a hash of each connection's addresses.
OWN_LISTENERS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class _WorkerServer(uvicorn.Server):
    """A worker's server, listening on a socket of its own in the port's ``SO_REUSEPORT`` group.

    With one socket shared by every worker, whichever worker wakes first
    accepts a burst of connections (libuv accepts until the queue is empty):
    one worker held 2,518 of 2,933 streams, and at 30,000 streams one worker
    ran into its descriptor limit while the other had room.  Each worker's own
    listener makes the kernel spread connections evenly; on SIGTERM the worker
    closes it first, so new connections go to the workers still listening.
    """

    _own: socket.socket | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        own = self._own = _reuse_port_socket(config.host, config.port)
        own.listen(config.backlog)
        await super().startup([own])

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        own, self._own = self._own, None
        for server in self.servers:
            server.close()  # stop accepting first; uvicorn closes them again, harmlessly
        if own is not None:
            own.close()
        await super().shutdown(sockets)


class _WorkerProcess(Process):
    """uvicorn's worker process, running a :class:`_WorkerServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = _WorkerServer(config=self.config)
        return self._server


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, starting :class:`_WorkerProcess` workers.

    The three methods that create workers are uvicorn's own (0.4x), with the
    process class swapped: ``Multiprocess`` names ``Process`` directly.
    """

    def _new(self) -> Process:
        process = _WorkerProcess(self.config, self.sockets)
        process.start()
        return process

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self._new())

    def restart_all(self) -> None:
        for idx, old_process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new_process = self._new()
            if not new_process.wait_until_ready(
                self.config.timeout_worker_healthcheck, self.should_exit
            ):
                new_process.kill()
                new_process.join()
                return
            old_process.terminate()
            old_process.join()
            self.processes[idx] = new_process

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error("Child process [%s] failed to start, stopping.", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info("Child process [%s] died", process.pid)
            self.processes[idx] = self._new()


def run_workers(config: uvicorn.Config, count: int) -> None:
    """Serve ``config`` (its app a :class:`WorkerApp`) from ``count`` processes; blocks.

    Unless ``PROMETHEUS_MULTIPROC_DIR`` is already set, the workers share a fresh
    directory of this run for their metrics (removed at exit), so ``/metrics``
    and ``/healthz`` can sum over them (:mod:`ssehub.server._metrics`).
    """
    config.workers = count
    # uvicorn's supervisor kills a worker that does not answer its ping within this
    # many seconds.  A worker accepting 15,000 streams on a busy machine missed the
    # default (5 s) and was killed with every stream it held; a truly hung worker
    # is still replaced, just later.
    config.timeout_worker_healthcheck = max(config.timeout_worker_healthcheck, HEALTHCHECK_TIMEOUT)
    with contextlib.ExitStack() as stack:
        if not os.environ.get(MULTIPROC_ENV):
            path = stack.enter_context(tempfile.TemporaryDirectory(prefix="ssehub-metrics-"))
            os.environ[MULTIPROC_ENV] = path  # read by each spawned worker at import
            stack.callback(os.environ.pop, MULTIPROC_ENV, None)
        if OWN_LISTENERS:
            # Held, never listened on: it keeps the port ours (and fails here if it
            # is taken); each worker listens on a socket of its own in the group.
            try:
                sock = _reuse_port_socket(config.host, config.port, alone=True)
            except OSError as exc:
                logger.error("cannot listen on %s:%d: %s", config.host, config.port, exc)
                raise SystemExit(1) from None
            stack.callback(sock.close)
            _Supervisor(config, sockets=[sock]).run()
            return
        sock = config.bind_socket()
        stack.callback(sock.close)
        Multiprocess(config, sockets=[sock]).run()
