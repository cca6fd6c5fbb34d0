"""The write deadline of one connection: time each write, abort the connection when one sticks.

A write is *pending* from the moment a chunk is handed to the transport until
the transport took it (:meth:`WriteGuard.timed`), stamped with the hub's
injected clock.  ``Hub.tick`` asks every guard whether its pending write is
older than the deadline (``--write-timeout``, or ``drain_timeout`` while
draining) and then calls :meth:`WriteGuard.abort_pending_write`:

* with the server's ``abort`` (``scope["extensions"]["ssehub.abort"]``) the
  connection is reset at once — the kernel buffers a client that stopped
  reading holds are freed, and the pending write returns (or raises);
* without one (a server that offers no such extension) the task that runs the
  response is cancelled; :meth:`WriteGuard.absorb_cancel` tells that task's
  ``except asyncio.CancelledError`` the cancel was the guard's, so it ends
  quietly instead of propagating it.

After an abort (:attr:`WriteGuard.aborted`) nothing more may be written.  The
hub's own :class:`~ssehub.hub.Stream` is a guard; a plug-in that writes its own
response (Durable Streams) takes one from :meth:`Hub.write_guard`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["WriteGuard"]

T = TypeVar("T")


class WriteGuard:
    """Times the writes of one response and aborts its connection when one is stuck."""

    __slots__ = ("_abort", "_aborted", "_clock", "_task", "last_write", "pending_since")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        #: Clock time of the last completed write.
        self.last_write = clock()
        #: Clock time the pending write started; ``None`` when no write is pending.
        self.pending_since: float | None = None
        self._task: asyncio.Task[object] | None = None
        self._abort: Callable[[], None] | None = None
        self._aborted = False

    @property
    def aborted(self) -> bool:
        """Whether the connection was aborted: nothing more may be written to it."""
        return self._aborted

    def attach(self, abort: Callable[[], None] | None) -> None:
        """Guard the writes of the current task; ``abort`` resets the connection, if given."""
        self._task = asyncio.current_task()
        self._abort = abort

    def detach(self) -> None:
        """The task is done writing: nothing is pending and nothing is left to abort."""
        self.pending_since = None
        self._task = None
        self._abort = None

    async def timed(self, write: Callable[[T], Awaitable[None]], item: T) -> None:
        """``await write(item)``, pending under the deadline until it returns."""
        self.pending_since = self._clock()
        await write(item)
        self.pending_since = None
        self.last_write = self._clock()

    def overdue(self, now: float, write_timeout: float) -> bool:
        """Whether a write has been pending longer than ``write_timeout`` at clock time ``now``."""
        started = self.pending_since
        return started is not None and now - started > write_timeout

    def abort_pending_write(self) -> None:
        """Kill the connection now: through ``abort``, else by cancelling the writing task."""
        if self._aborted:
            return
        self._aborted = True
        if self._abort is not None:
            # The transport dies at once; the pending write returns (or raises OSError).
            self._abort()
        elif self._task is not None:
            self._task.cancel()

    def absorb_cancel(self) -> bool:
        """In ``except asyncio.CancelledError``: True (and uncancelled) if the guard cancelled.

        False means someone else cancelled the task: re-raise.
        """
        if not self._aborted:
            return False
        task = self._task
        if task is not None:
            task.uncancel()
        return True
