"""The live feed of :class:`~ssehub.hub.backends.redis.RedisBackend`: follow the global log.

One :class:`LogFollower` per node runs ``XREAD BLOCK`` on ``P:log`` from the
last entry it delivered and hands every entry, in ``seq`` order, to the hub's
listener.  A node sees its own publishes this way too, so the hub never fans
out from ``append`` and nothing is delivered twice.

What it guarantees, and how:

* **Exactly once, in order.**  ``seq`` is contiguous in the log (the append
  script mints it and writes the log entry in one step), so the follower
  expects ``last + 1`` next.  Entries at or below ``last`` are never delivered.
* **Outages.**  When Redis drops or restarts, the follower reconnects by
  itself, with exponential backoff (``reconnect_delay`` doubling up to
  ``reconnect_max_delay`` seconds, full jitter from the injected ``rng``), and
  reads on from ``last``: events that other nodes published meanwhile are
  delivered in order.  No ``on_gap`` for a mere outage.
* **Gaps.**  Each round trip also reads the epoch and the seq counter.  The
  follower resynchronises, calling ``listener.on_gap()`` exactly once, when

  - the next entry is not ``last + 1`` (the log was trimmed past ``last``
    while this node lagged or was cut off),
  - the epoch changed or vanished (the store was wiped), or
  - the counter went below ``last`` (Redis came back from an older snapshot:
    seqs would be minted twice, so the epoch is replaced, which every other
    node then notices too).

  Resynchronising reads the (possibly new) epoch and the head in one script,
  jumps ``last`` to the head and then calls ``on_gap``: events above the head
  come live, those below are in history, where the hub's reset clients look.

Epoch changes are detected within one ``block`` period (the ``XREAD BLOCK``
timeout, float seconds), since a wiped log does not wake a blocked reader.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .._types import StoredEvent
from ._base import LiveListener

__all__ = ["LogFollower", "new_epoch", "parse_entry", "seq_of"]

logger = logging.getLogger("ssehub.hub.redis")


def new_epoch() -> str:
    """A fresh random epoch token (URL- and cursor-safe)."""
    return secrets.token_hex(8)


def seq_of(entry_id: str) -> int:
    """The ``seq`` of a stream entry id ``"{seq}-0"``."""
    return int(entry_id.partition("-")[0])


def parse_entry(entry_id: str, fields: dict[str, str], topic: str | None = None) -> StoredEvent:
    """A :class:`StoredEvent` from a stream entry (``topic`` from the fields if not given)."""
    return StoredEvent(
        seq=seq_of(entry_id),
        topic=topic if topic is not None else fields["topic"],
        data=fields["data"],
        event=fields.get("event"),
        time=float(fields["time"]),
        private=fields.get("private") == "1",
    )


# Resync script runner: (candidate epoch, epoch to replace or "") -> (epoch, head).
Resync = Callable[[str, str], Awaitable[tuple[str, int]]]


class LogFollower:
    """Follow ``P:log`` from ``last`` and feed ``listener``; see the module docstring."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        log_key: str,
        epoch_key: str,
        seq_key: str,
        resync: Resync,
        listener: LiveListener,
        epoch: str,
        last: int,
        on_epoch: Callable[[str], None],
        block: float = 1.0,
        batch: int = 512,
        reconnect_delay: float = 0.05,
        reconnect_max_delay: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._log_key = log_key
        self._epoch_key = epoch_key
        self._seq_key = seq_key
        self._resync = resync
        self._listener = listener
        self.epoch = epoch
        self.last = last
        self._on_epoch = on_epoch
        self._block_ms = max(1, int(block * 1000))
        self._batch = batch
        self._delay = reconnect_delay
        self._max_delay = reconnect_max_delay
        self._rng = rng or random.Random()
        #: True while the last round trip to Redis succeeded.
        self.connected = True
        self._last_event: StoredEvent | None = None
        self._stopping = False

    def stop(self) -> None:
        """Make :meth:`run` return at its next step (cancel it too, to end a blocked read)."""
        self._stopping = True

    async def run(self) -> None:
        """Follow the log until stopped or cancelled; reconnects by itself.

        On Python 3.11, ``asyncio.wait_for`` (which redis-py uses to send
        commands) can swallow a cancellation (CPython gh-86296), so the owner
        calls :meth:`stop` and cancels until the task is done.
        """
        failures = 0
        while not self._stopping:
            try:
                if failures:
                    await self._verify_last()
                await self._round_trip()
            except (RedisError, OSError) as exc:
                if self._stopping:
                    return
                if self.connected:
                    logger.warning("redis live feed interrupted: %s; reconnecting", exc)
                self.connected = False
                failures += 1
                cap = min(self._max_delay, self._delay * 2 ** min(failures - 1, 30))
                await asyncio.sleep(self._rng.uniform(0, cap))
                continue
            if failures:
                logger.warning("redis live feed reconnected at seq %d", self.last)
                self.connected = True
                failures = 0

    async def _verify_last(self) -> None:
        """After an outage: is the last delivered event still what the log holds at its seq?

        A Redis restored from an older snapshot mints some seqs a second time;
        the counter check in :meth:`_round_trip` misses that once the counter
        has passed ``last`` again, this check does not.  (An entry trimmed from
        the log meanwhile is left to the contiguity check.)
        """
        seen = self._last_event
        if seen is None or seen.seq != self.last:
            return
        entry_id = f"{seen.seq}-0"
        entries: Any = await self._client.xrange(self._log_key, entry_id, entry_id)
        if entries and parse_entry(entries[0][0], entries[0][1]) != seen:
            await self._resync_and_report(replace=self.epoch)

    async def _round_trip(self) -> None:
        """One ``GET epoch, GET seq, XREAD BLOCK`` round trip, then deliver or resync."""
        pipe = self._client.pipeline(transaction=False)
        pipe.get(self._epoch_key)
        pipe.get(self._seq_key)
        pipe.xread({self._log_key: f"{self.last}-0"}, count=self._batch, block=self._block_ms)
        epoch, head, reply = await pipe.execute()
        if epoch != self.epoch:
            await self._resync_and_report(replace="")
            return
        if int(head or 0) < self.last:
            await self._resync_and_report(replace=self.epoch)
            return
        for entry_id, fields in _entries(reply):
            seq = seq_of(entry_id)
            if seq <= self.last:
                continue
            if seq != self.last + 1:
                await self._resync_and_report(replace="")
                return
            event = parse_entry(entry_id, fields)
            self.last = seq
            self._last_event = event
            self._deliver(event)

    async def _resync_and_report(self, *, replace: str) -> None:
        epoch, head = await self._resync(new_epoch(), replace)
        logger.warning(
            "redis live feed lost track at seq %d (epoch %s -> %s, head %d); resetting streams",
            self.last,
            self.epoch,
            epoch,
            head,
        )
        self.epoch = epoch
        self.last = head
        self._on_epoch(epoch)
        try:
            self._listener.on_gap()
        except Exception:
            logger.exception("live listener failed in on_gap")

    def _deliver(self, event: StoredEvent) -> None:
        try:
            self._listener.on_event(event)
        except Exception:
            logger.exception("live listener failed in on_event for seq %d", event.seq)


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The entries of an XREAD reply on one stream (empty when the block timed out)."""
    return [entry for _stream, entries in reply or () for entry in entries]
