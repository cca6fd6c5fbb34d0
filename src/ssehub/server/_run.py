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

With ``--admin-port`` a second uvicorn server, in the same event loop, serves
the admin surface (:class:`._admin.AdminApp`) on ``127.0.0.1``; the main
server owns the signals and the lifespan, and the admin server stops when the
main one has.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import gc
import logging
import logging.config
import math
import resource
import socket
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ..hub import StoredEvent, open_backend
from ._admin import ADMIN_HOST, AdminApp
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
from ._https import HttpsServer, hypercorn_config
from ._plugin import Plugin
from ._settings import ServerSettings
from ._tls import check_tls, server_context
from ._workers import WORKER_PROTOCOL, WorkerApp, check_workers, run_workers

__all__ = ["check_store", "raise_open_file_limit", "run"]

logger = logging.getLogger("ssehub.server")

#: ``--max-connections`` when nobody set it (a cap lowered from it is no surprise).
_DEFAULT_MAX_CONNECTIONS: int = ServerSettings().max_connections

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


class _AdminServer(uvicorn.Server):
    """The admin port's server: the main server captures the signals, not this one."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _admin_socket(port: int) -> socket.socket:
    """The admin port's listening socket on ``127.0.0.1`` (bound before serving starts)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ADMIN_HOST, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _serve_with_admin(server: _HubServer, admin: _AdminServer, sock: socket.socket) -> None:
    """Run both servers in one loop until the main one stops."""

    async def both() -> None:
        logger.info("admin surface on http://%s:%d (loopback only)", ADMIN_HOST, admin.config.port)
        admin_task = asyncio.create_task(admin.serve(sockets=[sock]), name="ssehub-admin")
        try:
            await server.serve()
        finally:
            admin.should_exit = True
            await admin_task

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(both())


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


def connection_cap_note(
    settings: ServerSettings, limits: HttpLimits, descriptor_limit: int
) -> tuple[int, str] | None:
    """The log level and line saying the connection cap was lowered, if it was.

    A warning when the user asked for more connections than the open-file limit
    holds; only an info line when the default did not fit (nothing to fix).
    """
    cap = limits.max_connections
    if cap >= settings.max_connections:
        return None
    if settings.max_connections == _DEFAULT_MAX_CONNECTIONS:
        return logging.INFO, (
            f"serving at most {cap} connections: the open-file limit (ulimit -n "
            f"{descriptor_limit}) holds no more"
        )
    return logging.WARNING, (
        f"--max-connections {settings.max_connections} cannot be honoured with "
        f"{descriptor_limit} open files (ulimit -n): serving at most {cap} connections"
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
    note = connection_cap_note(settings, limits, descriptor_limit)
    if note is not None:
        logging.config.dictConfig(_log_config(settings.log_level))  # uvicorn applies it again
        logger.log(*note)
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
    tls = check_tls(settings)
    if tls is not None:
        _serve_https(served, plugins, limits, tls)
        return
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
    admin: _AdminServer | None = None
    if settings.admin_port is not None:
        try:
            admin_sock = _admin_socket(settings.admin_port)
        except OSError as exc:
            logger.error("cannot listen on the admin port %d: %s", settings.admin_port, exc)
            raise SystemExit(1) from None
        admin_config = {**common, "host": ADMIN_HOST, "port": settings.admin_port}
        admin_config.update(lifespan="off", timeout_graceful_shutdown=2)
        admin = _AdminServer(uvicorn.Config(AdminApp(hub_app), **admin_config))
    try:
        if admin is None:
            server.run()
        else:
            _serve_with_admin(server, admin, admin_sock)
    except SystemExit as exc:  # uvicorn exits 3 when it can't bind: ssehub says 1
        raise SystemExit(0 if exc.code in (0, None) else 1) from None
    if not server.started:
        raise SystemExit(1)


def _serve_https(
    settings: ServerSettings,
    plugins: Sequence[Plugin],
    limits: HttpLimits,
    tls: tuple[str, str],
) -> None:
    """Serve over TLS (HTTP/2 and HTTP/1.1) with Hypercorn until SIGTERM/SIGINT."""
    logging.config.dictConfig(_log_config(settings.log_level))
    if settings.dev_cert:
        logger.info("--dev-cert: self-signed certificate %s (key %s), for local use only", *tls)
    hub_app = HubApp(settings, plugins=plugins, install_signal_handlers=False)
    server = HttpsServer(
        hub_app,
        server_context(*tls),
        ConnectionGate(limits),
        hypercorn_config(limits, access_log=settings.access_log),
        drain_timeout=settings.hub.drain_timeout,
    )
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(server.serve(settings.host, settings.port, backlog=4096))
    if not server.started:
        raise SystemExit(1)
