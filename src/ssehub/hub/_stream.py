"""One live stream, owned by the hub from its opening write to its end.

A server hands :meth:`Stream.run` two things: ``write`` (a coroutine function
that sends one chunk of the response body and returns when the transport took
it) and, when it can, ``abort`` (kills the connection at once: a TCP reset, so
no kernel buffer is left held by a client that stopped reading).  Everything
else is the stream's job:

* **Sequence.**  The opening write (``retry`` with the cursor ``id``, or the
  reset event), then history after the cursor, then live events — one write
  per replay step or per flush of queued live events.
* **Time.**  Each write is stamped with the hub's injected clock: a write is
  *pending* from the moment the stream hands a chunk to ``write`` until
  ``write`` returns.  :meth:`Stream.tick` (called by ``Hub.tick`` for every
  stream) queues a heartbeat on a stream idle for ``heartbeat_interval`` and
  ends a stream whose write has been pending longer than the deadline.
* **Bounds.**  Live events wait in the :class:`Subscription`'s queue, bounded
  by events and bytes; a replay step is bounded by ``replay_batch`` events and
  ``max_queue_bytes`` bytes, and the next step is read only after the previous
  write returned — a slow reader paces its own replay, and the hub holds at
  most one step per stream.
* **End.**  :meth:`Stream.close` ends the stream after what is queued.  A
  stream ended for ``write-timeout`` or ``slow`` has its connection aborted —
  at once if a write is stuck, else when :meth:`run` returns — through
  ``abort`` when the server gave one (the kernel buffers a non-reader holds
  are freed), else, for a stuck write, by cancelling the task that runs the
  stream.  After an abort (:attr:`aborted`) nothing more may be written.

Close reasons: ``disconnect`` (the client left), ``slow``, ``write-timeout``,
``shutdown``, ``gap`` (the live feed lost track), ``store-unavailable``,
``end`` (the server asked), ``token-expired`` (the subscriber's token expired;
it reconnects with a fresh one after a jittered ``retry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from ._guard import WriteGuard
from ._subscription import Subscription

__all__ = ["HEARTBEAT", "Stream"]

logger = logging.getLogger("ssehub.hub")

#: The heartbeat chunk: a comment line and a blank line; it dispatches nothing.
HEARTBEAT = b":\n\n"

#: Reasons after which a pending write is abandoned and the connection aborted.
_ABORTING = frozenset({"slow", "write-timeout"})

Write = Callable[[bytes], Awaitable[None]]


class Stream(WriteGuard):
    """One subscription's life on the wire; created by :meth:`Hub.open`.

    Its write deadline is its :class:`~ssehub.hub._guard.WriteGuard` part.
    """

    __slots__ = (
        "_ended",
        "_on_close",
        "_on_end",
        "_replay",
        "_running",
        "expires_at",
        "start",
        "subscription",
    )

    def __init__(
        self,
        subscription: Subscription,
        start: bytes,
        replay: Callable[[], AsyncIterator[bytes]] | None,
        *,
        clock: Callable[[], float],
        on_close: Callable[[Stream], None],
        on_end: Callable[[Stream], None],
    ) -> None:
        super().__init__(clock)
        self.subscription = subscription
        subscription.on_close = self._closed
        #: The opening write: ``retry`` with the cursor, or the reset event (empty once written).
        self.start = start
        self._replay = replay
        self._on_close = on_close
        self._on_end = on_end
        self._running = False
        self._ended = False
        #: Wall-clock time (epoch seconds) by which the stream must end (its token's ``exp``).
        self.expires_at: float | None = None

    @property
    def closed(self) -> bool:
        return self.subscription.closed

    @property
    def close_reason(self) -> str:
        return self.subscription.close_reason

    async def run(self, write: Write, abort: Callable[[], None] | None = None) -> str:
        """Write the whole stream; return why it ended (a close reason).

        ``write`` must raise ``OSError`` (or return) when the connection is
        gone; the stream then ends with reason ``disconnect``.  After ``run``
        returns with ``write-timeout`` or ``slow`` the connection was aborted
        and nothing more may be written to it.
        """
        sub = self.subscription
        clock = self._clock
        if self._running or self._ended:
            raise RuntimeError("a stream runs once")
        self._running = True
        self.attach(abort)
        try:
            await self._write(write, self.start)
            self.start = b""  # written: a stream that idles for hours keeps nothing of it
            replay, self._replay = self._replay, None
            if replay is not None:
                async for chunk in replay():
                    await self._write(write, chunk)
                del replay
            # The live loop, flat: it runs once per write of every stream.  An idle
            # stream waits on the subscription's future itself: no frame of its own.
            while True:
                batch = sub.take()
                if batch is None:
                    if sub.closed:
                        break
                    await sub.waiter()
                    continue
                self.pending_since = clock()
                await write(batch)
                self.pending_since = None
                self.last_write = clock()
        except asyncio.CancelledError:
            if not self.absorb_cancel():
                raise
        except OSError:
            sub.close("disconnect")
        finally:
            self.detach()
            sub.close("end")  # a no-op unless the stream ran out by itself
            if sub.close_reason in _ABORTING and abort is not None and not self._aborted:
                # Its socket buffers hold what it never read: free them now.
                self._aborted = True
                abort()
            self._running = False
            self.end()
        return sub.close_reason

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """Run the stream in a task and yield its writes, for in-process readers.

        The same path as a server's: each write waits until the reader took the
        previous chunk, so deadlines and bounds apply as on a socket.  Closing
        the generator ends the stream.
        """
        handoff: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        runner = asyncio.ensure_future(self.run(handoff.put))
        try:
            while True:
                getter = asyncio.ensure_future(handoff.get())
                await asyncio.wait({getter, runner}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                    continue
                getter.cancel()
                while not handoff.empty():
                    yield handoff.get_nowait()
                return
        finally:
            self.end()
            if not runner.done():
                runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    async def _write(self, write: Write, chunk: bytes) -> None:
        if self.subscription.closed and self.subscription.close_reason in _ABORTING:
            return
        await self.timed(write, chunk)

    def tick(self, now: float, *, heartbeat_interval: float, write_timeout: float) -> bool:
        """Apply the time bounds at clock time ``now``; True if the write deadline ended it."""
        if self.pending_since is not None:
            if self.overdue(now, write_timeout):
                # Even a stream already told to end (drain) is aborted: its write is stuck.
                self.close("write-timeout")
                self.abort_pending_write()
                return True
        elif heartbeat_interval > 0 and now - self.last_write >= heartbeat_interval:
            self.subscription.push_control(HEARTBEAT)
            self.last_write = now
        return False

    def close(self, reason: str = "end") -> None:
        """End the stream after what is queued (see the module docstring for aborts)."""
        self.subscription.close(reason)

    def disconnected(self) -> None:
        """The client left: :meth:`close` with reason ``disconnect``.

        A server's disconnect callback (one bound method, no ``partial``).
        """
        self.subscription.close("disconnect")

    def end(self) -> None:
        """Close the stream and release it, unless it is running (then ``run`` does).

        Idempotent; a server calls it when it will not (or no longer) run the stream.
        """
        self.subscription.close("end")
        if not self._running and not self._ended:
            self._ended = True
            self._on_end(self)

    def _closed(self, sub: Subscription) -> None:
        """The subscription closed (here, or on its own when it fell behind); runs once."""
        if sub.close_reason in _ABORTING and self.pending_since is not None:
            self.abort_pending_write()
        self._on_close(self)
