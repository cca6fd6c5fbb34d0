"""A loopback TCP proxy that tests steer: move it to another upstream, cut, drop answers.

An asyncio server in its own thread forwards every connection to the current
upstream port, bytes untouched, both ways.  From the test's thread:

* :meth:`TcpProxy.route_to` sends *new* connections to another port (a load
  balancer moving a client to another process);
* :meth:`TcpProxy.cut` resets every open connection now (both sides);
* :meth:`TcpProxy.drop_responses` makes the next ``n`` connections forward the
  request, then reset the client at the first byte of the upstream's answer,
  which is never forwarded: the upstream did the work, the client never hears it.

``accepted`` counts connections, ``dropped`` the answers thrown away.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.ports import free_port

__all__ = ["TcpProxy", "run_proxy"]


class TcpProxy:
    """See the module docstring; build it with :func:`run_proxy`."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.upstream_port = upstream_port
        self.accepted = 0
        self.dropped = 0
        self._drop = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route_to(self, port: int) -> None:
        self.upstream_port = port

    def drop_responses(self, n: int) -> None:
        self._drop = n

    def cut(self) -> None:
        """Reset every open connection (both sides) and wait until that is done."""

        async def reset_all() -> None:
            for writer in list(self._open):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(reset_all(), self._loop).result(timeout=10)

    # -- the proxy's own thread ---------------------------------------------

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self._started.set()
        async with server:
            await self._stop.wait()
            for writer in list(self._open):
                writer.transport.abort()
            tasks = self._tasks - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.accepted += 1
        drop = self._drop > 0
        if drop:
            self._drop -= 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, drop=False, client=writer),
                self._pump(up_reader, writer, drop=drop, client=writer),
            )
        finally:
            self._open -= {writer, up_writer}
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        drop: bool,
        client: asyncio.StreamWriter,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if drop:
                    self.dropped += 1
                    break
                writer.write(chunk)
                await writer.drain()
        # One side ended: end both, so the other pump stops too.
        client.transport.abort()
        writer.transport.abort()


@contextmanager
def run_proxy(upstream_port: int) -> Iterator[TcpProxy]:
    """Run a :class:`TcpProxy` to ``upstream_port`` on a free port until the block ends."""
    proxy = TcpProxy(upstream_port)
    proxy._thread.start()
    if not proxy._started.wait(10):
        raise RuntimeError("the TCP proxy did not start")
    try:
        yield proxy
    finally:
        assert proxy._stop is not None
        proxy._loop.call_soon_threadsafe(proxy._stop.set)
        proxy._thread.join(timeout=10)
