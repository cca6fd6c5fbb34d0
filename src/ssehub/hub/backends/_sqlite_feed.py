"""The SQLite store's live feed: every process on one file hears every event, once, in order.

The store's ``seq`` is the source of truth.  A :class:`SQLiteFeed` keeps
``last``, the highest ``seq`` it delivered, and delivers only rows above it,
in ``seq`` order, so nothing is delivered twice or out of order.  Rows come
two ways:

* **This process's own commits** (:meth:`SQLiteFeed.local`, called by the
  group writer after each commit, before the publishers resume): when the
  batch's first ``seq`` is ``last + 1`` — always, unless another process
  committed in between — they are delivered from memory, with no read.
  Otherwise they are left to the catch-up read, which finds them in the file.
* **Other processes' commits**, by a *catch-up read* of the rows after
  ``last`` (:meth:`SQLiteFeed.catch_up`), in steps of at most ``step`` rows
  and about ``step_bytes`` bytes, on the event loop, on a connection of its own
  (a read in WAL mode never waits for a writer).  A catch-up runs when another
  process's wake-up datagram arrives (:mod:`._sqlite_wake`), and on a timer
  every ``poll_interval`` seconds whatever happens: a lost wake-up costs
  latency, never events.

Why reading after ``last`` misses nothing: writers mint ``seq`` inside a
``BEGIN IMMEDIATE`` transaction, one writer at a time across all processes,
so rows commit in ``seq`` order and every snapshot holds a prefix of the
minted seqs; a rolled-back insert gives its ``seq`` back (AUTOINCREMENT's
counter is part of the transaction).  So seqs are contiguous, and a row
missing below a row read was deleted — by retention, before this process read
it.  The feed then calls ``on_gap`` (the hub ends every stream; clients resume
from history and get the reset event if they need it) and continues from the
row it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
from collections.abc import Sequence

from .._types import StoredEvent
from ._base import LiveListener, event_size
from ._sqlite_wake import WakeChannel

__all__ = ["SQLiteFeed"]

logger = logging.getLogger("ssehub.hub.sqlite")

#: Failed reads in a row before the feed reports itself unhealthy (``/readyz`` 503).
_UNHEALTHY_AFTER = 3
#: Seconds before a failed read is retried.
_RETRY_DELAY = 0.05

_AFTER = (
    "SELECT seq, topic, data, event, time, private FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
)


class SQLiteFeed:
    """Deliver the file's events to ``listener``; see the module docstring."""

    def __init__(
        self,
        db: sqlite3.Connection,
        listener: LiveListener,
        *,
        last: int,
        wake: WakeChannel | None,
        poll_interval: float = 0.5,
        step: int = 256,
        step_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._db = db
        self._listener = listener
        self.last = last
        self._wake = wake
        self._poll_interval = poll_interval
        self._step = step
        self._step_bytes = step_bytes
        self._scheduled = False
        self._timer: asyncio.Task[None] | None = None
        self._closed = False
        #: Catch-up reads done, rows they delivered, gaps reported (for tests and metrics).
        self.reads = 0
        self.read_rows = 0
        self.gaps = 0
        #: False after :data:`_UNHEALTHY_AFTER` failed reads in a row, until one succeeds.
        self.healthy = True
        self._failures = 0

    def start(self) -> None:
        if self._wake is not None:
            self._wake.open(self.schedule)
        self._timer = asyncio.get_running_loop().create_task(
            self._poll(), name="ssehub-sqlite-feed"
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._wake is not None:
            self._wake.close()
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            self.catch_up()

    # -- the two ways rows arrive ----------------------------------------------

    def local(self, events: Sequence[StoredEvent]) -> None:
        """Events this process just committed (ascending, contiguous): deliver, tell the others."""
        fresh = [event for event in events if event.seq > self.last]
        if fresh:
            if fresh[0].seq == self.last + 1 and _contiguous(fresh):
                for event in fresh:
                    self._deliver(event)
            else:
                self.schedule()
        if events and self._wake is not None:
            self._wake.notify()

    def schedule(self) -> None:
        """Run a catch-up read soon (once, however many times this is called meanwhile)."""
        if not self._scheduled and not self._closed:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_catch_up)

    def _scheduled_catch_up(self) -> None:
        self._scheduled = False
        self.catch_up()

    def catch_up(self) -> bool:
        """Read one step of rows after ``last`` and deliver them; schedule the next if more.

        Returns whether the read succeeded.
        """
        if self._closed:
            return False
        size = count = 0
        try:
            cursor = self._db.execute(_AFTER, (self.last, self._step))
            try:
                while count < self._step and size < self._step_bytes:
                    rows = cursor.fetchmany(16)
                    if not rows:
                        break
                    for seq, topic, data, event, when, private in rows:
                        count += 1
                        size += event_size(data, event)
                        self._take(
                            StoredEvent(int(seq), topic, data, event, float(when), bool(private))
                        )
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            # A WAL read rarely fails (SQLITE_BUSY while another connection resets the
            # WAL index): retry soon; report unhealthy only when it keeps failing.
            self._failures += 1
            if self._failures == _UNHEALTHY_AFTER:
                logger.warning("SQLite live feed read failed: %s; retrying", exc)
                self.healthy = False
            asyncio.get_running_loop().call_later(_RETRY_DELAY, self.schedule)
            return False
        if not self.healthy:
            logger.warning("SQLite live feed reads again at seq %d", self.last)
        self._failures = 0
        self.healthy = True
        self.reads += 1
        if count >= self._step or size >= self._step_bytes:
            self.schedule()
        return True

    def _take(self, event: StoredEvent) -> None:
        if event.seq <= self.last:
            return
        if event.seq != self.last + 1:
            self._report_gap(event.seq)
        self.read_rows += 1
        self._deliver(event)

    def _report_gap(self, seq: int) -> None:
        self.gaps += 1
        logger.warning(
            "SQLite live feed: events %d..%d were removed before this process read them; "
            "resetting streams",
            self.last + 1,
            seq - 1,
        )
        try:
            self._listener.on_gap()
        except Exception:
            logger.exception("live listener failed in on_gap")

    def _deliver(self, event: StoredEvent) -> None:
        self.last = event.seq
        try:
            self._listener.on_event(event)
        except Exception:
            logger.exception("live listener failed in on_event for seq %d", event.seq)


def _contiguous(events: Sequence[StoredEvent]) -> bool:
    return all(b.seq == a.seq + 1 for a, b in itertools.pairwise(events))
