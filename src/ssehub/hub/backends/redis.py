"""History in Redis Streams, shared by any number of hub processes ("nodes").

Every node that opens the same Redis (URL and ``prefix``) shares topics,
history and one ``seq`` space, so a cursor issued by one node resumes exactly
on any other.

Design:

* **Redis mints ``seq``.**  A Lua script (:data:`._redis_scripts.APPEND`, run
  with EVALSHA through redis-py's ``register_script``) increments ``P:seq``,
  adds the event to its topic stream ``P:t:{topic}`` and to the global log
  ``P:log``, both with the explicit entry id ``"{seq}-0"``, and applies the
  count bound, all in one atomic step.  So ``seq`` is strictly increasing
  across all topics and all nodes, and contiguous in the log.  The key layout
  is drawn in :mod:`._redis_scripts`.
* **Epoch.**  ``P:epoch`` holds a random token, created with the first start
  or append.  If Redis is wiped the token is gone and a new one is created, so
  the hub recognises cursors from the old seq space and resets them.
* **Live feed.**  One background task per node follows ``P:log`` with
  ``XREAD BLOCK`` (:class:`._redis_feed.LogFollower`) and calls
  ``listener.on_event`` for every event in ``seq`` order, its own publishes
  included; ``append`` never notifies the listener itself, so nothing is
  delivered twice.  ``append`` may return before or after the feed delivers
  the event.  The feed rides out Redis outages and restarts on its own and
  calls ``on_gap`` only when it really lost track (see that module).
* **Reads.**  :meth:`RedisBackend.read` runs one Lua script
  (:data:`._redis_scripts.READ`, atomic like a MULTI/EXEC) that walks each
  topic's stream from ``after + 1`` one entry at a time, merges by ``seq`` and
  stops at ``limit`` or at ``max_bytes`` (UTF-8 bytes of data + event type,
  as :func:`._base.event_size`), so this process receives at most the result.
  ``gap`` is true when a topic's trim mark (the highest seq retention removed
  from it, kept in ``P:trimmed``) is above ``after``, or, for a topic with
  no stream, when ``P:forgotten`` is.
* **Retention.**  ``max_events`` is applied on every append (exact count);
  ``max_age`` by :meth:`RedisBackend.prune`, which trims the leading run of
  entries older than ``now - max_age`` (by the time recorded at publish, from
  the publishing node's ``clock``: keep node clocks in sync).  The log is
  kept to ``log_max_len`` entries and ``log_max_bytes`` bytes (64 MiB; past
  either by 1/64 it is trimmed back): a node cut off for longer than that many
  publishes, or bytes of them, resynchronises with ``on_gap``.  So the log holds
  a bounded amount whatever the size of the events.  A topic emptied by
  retention is forgotten: no key or field of it remains (the gap convention
  of :mod:`._base`, with ``P:forgotten`` as the store-wide mark).
* **Quotas** (:mod:`._quota`) are checked inside the append script, against
  ``P:topics`` (its size) and ``P:bytes`` (kept by every script that adds or
  removes entries): the counts of every node.  A store written before quotas
  counts only the bytes added since (``P:bytes`` never goes below 0).
* **Idempotency.**  An append's one-time token lives 30 s; a publisher's
  ``idempotency_key`` is used as that token (``P:key:{key}``) and lives 24 h
  (:data:`._idempotency.IDEMPOTENCY_WINDOW`), one small string key each,
  expired by Redis itself.  At most ``max_idempotency_keys`` of them are held
  (``P:keys`` lists them by time; the oldest are forgotten first, as the other
  stores do), so a publisher sending a fresh key with every event can't grow
  Redis for 24 h.
* **Errors.**  Every redis-py error is translated here, once, into
  :class:`~ssehub.errors.BackendUnavailableError` (chained with ``from``).
  Connecting gives up after ``connect_timeout`` and a command after
  ``command_timeout`` (float seconds).  redis-py's own retries are off; a
  command that fails because its connection broke is repeated exactly once,
  at once, on a fresh connection (idle pooled connections die unnoticed when
  Redis restarts or the network blips).  That is safe for appends too: each
  carries a one-time token, and a repeat of an append that did run returns
  the first run's ``seq`` without storing anything.  Only when a command
  *times out* (a hung Redis) is the outcome of an append unknown: it may
  still be stored, once, when Redis wakes up.  A timeout is raised as
  :class:`~ssehub.errors.StoreTimeoutError` (a ``BackendUnavailableError``),
  so callers can say so; retrying with the same idempotency key is safe.

Redis Cluster is not supported (the scripts touch keys of several slots).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...errors import BackendUnavailableError, StoreTimeoutError
from .._types import ReadResult, Retention, StoredEvent
from ._base import LiveListener
from ._idempotency import IDEMPOTENCY_WINDOW, fingerprint, replay, validate_idempotency_key
from ._quota import quota_error
from ._redis_feed import LogFollower, new_epoch, parse_entry
from ._redis_scripts import APPEND, PRUNE, READ, RESYNC

__all__ = ["RedisBackend"]

_T = TypeVar("_T")

#: How long an append's one-time token is kept (ms): far longer than one retry takes.
_ONCE_TTL_MS = 30_000


def _bound(value: int | None) -> int:
    """A retention bound as the scripts take it: -1 for none."""
    return -1 if value is None else value


#: How long a publisher's idempotency key is kept (ms).
_KEY_TTL_MS = int(IDEMPOTENCY_WINDOW * 1000)


@dataclass(frozen=True, slots=True)
class _Keys:
    """The Redis keys under one ``prefix`` (layout in :mod:`._redis_scripts`)."""

    prefix: str

    @property
    def seq(self) -> str:
        return f"{self.prefix}:seq"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"

    @property
    def log(self) -> str:
        return f"{self.prefix}:log"

    @property
    def topics(self) -> str:
        return f"{self.prefix}:topics"

    @property
    def trimmed(self) -> str:
        return f"{self.prefix}:trimmed"

    @property
    def forgotten(self) -> str:
        return f"{self.prefix}:forgotten"

    @property
    def bytes(self) -> str:
        return f"{self.prefix}:bytes"

    def topic(self, topic: str) -> str:
        return f"{self.prefix}:t:{topic}"

    def once(self, token: str) -> str:
        return f"{self.prefix}:once:{token}"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}:key:{key}"

    @property
    def held_keys(self) -> str:
        return f"{self.prefix}:keys"

    @property
    def log_bytes(self) -> str:
        return f"{self.prefix}:logbytes"


class RedisBackend:
    """A :class:`~ssehub.hub.backends._base.Backend` on Redis Streams; see the module docstring.

    ``url`` is a redis-py URL (``redis://[user:password@]host:port/db``,
    ``rediss://`` for TLS, ``unix://``).  Nothing connects before
    :meth:`start` or the first command.
    """

    def __init__(
        self,
        url: str,
        *,
        retention: Retention = Retention(),  # noqa: B008 - frozen value object
        prefix: str = "ssehub",
        clock: Callable[[], float] = time.time,
        log_max_len: int = 100_000,
        log_max_bytes: int | None = 64 * 1024 * 1024,
        max_idempotency_keys: int = 100_000,
        max_connections: int = 64,
        connect_timeout: float = 1.5,
        command_timeout: float = 5.0,
        feed_block: float = 1.0,
        reconnect_delay: float = 0.05,
        reconnect_max_delay: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self.epoch = ""
        self.retention = retention
        self._keys = _Keys(prefix)
        self._clock = clock
        self._log_max_len = log_max_len
        self._log_max_bytes = log_max_bytes
        self._max_keys = max_idempotency_keys
        self._feed_options: dict[str, Any] = {
            "block": feed_block,
            "reconnect_delay": reconnect_delay,
            "reconnect_max_delay": reconnect_max_delay,
            "rng": rng,
        }
        common: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        try:
            self._pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=command_timeout,
                socket_timeout=command_timeout,
                **common,
            )
            # The feed's connection blocks in XREAD for up to ``feed_block`` seconds.
            self._feed_pool = aioredis.ConnectionPool.from_url(
                url, max_connections=2, socket_timeout=feed_block + command_timeout, **common
            )
        except ValueError as exc:
            raise ValueError(f"invalid Redis URL: {exc}") from exc
        kwargs = self._pool.connection_kwargs
        self._where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        self._client = aioredis.Redis(connection_pool=self._pool)
        self._feed_client = aioredis.Redis(connection_pool=self._feed_pool)
        self._append_script = self._client.register_script(APPEND)
        self._prune_script = self._client.register_script(PRUNE)
        self._read_script = self._client.register_script(READ)
        self._resync_script = self._client.register_script(RESYNC)
        self._follower: LogFollower | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, listener: LiveListener) -> None:
        """Connect, read (or create) the epoch, and start following the log from the head.

        Raises :class:`~ssehub.errors.BackendUnavailableError` if Redis can't
        be reached.
        """
        if self._task is not None:
            raise RuntimeError("RedisBackend.start() was already called")
        epoch, head = await self._run("start", lambda: self._resync(new_epoch(), "", self._client))
        self.epoch = epoch
        self._follower = LogFollower(
            self._feed_client,
            log_key=self._keys.log,
            epoch_key=self._keys.epoch,
            seq_key=self._keys.seq,
            resync=lambda candidate, replace: self._resync(candidate, replace, self._feed_client),
            listener=listener,
            epoch=epoch,
            last=head,
            on_epoch=self._set_epoch,
            **self._feed_options,
        )
        self._task = asyncio.create_task(self._follower.run(), name="ssehub-redis-live-feed")

    async def aclose(self) -> None:
        """Stop the live feed and close every connection.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._follower is not None and self._task is not None:
            self._follower.stop()
            # Cancel until done: one cancellation can be swallowed on Python 3.11
            # (see LogFollower.run); a blocked XREAD needs one to end early.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait([self._task], timeout=0.2)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in (self._client, self._feed_client):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
        for pool in (self._pool, self._feed_pool):
            with contextlib.suppress(RedisError, OSError):
                await pool.aclose()

    @property
    def feed_connected(self) -> bool:
        """Whether the live feed runs and its last round trip to Redis succeeded."""
        task, follower = self._task, self._follower
        return task is not None and not task.done() and follower is not None and follower.connected

    # -- the Backend operations --------------------------------------------------------------

    async def append(
        self,
        topic: str,
        data: str,
        event: str | None = None,
        *,
        idempotency_key: str | None = None,
        private: bool = False,
    ) -> StoredEvent:
        """Store one event; Redis mints its ``seq``.  See the module docstring for errors."""
        if idempotency_key is None:
            once, ttl = self._keys.once(secrets.token_hex(12)), _ONCE_TTL_MS
            max_keys = -1  # one-time tokens are not listed: they live 30 s
        else:
            validate_idempotency_key(idempotency_key)
            once, ttl = self._keys.idempotency(idempotency_key), _KEY_TTL_MS
            max_keys = self._max_keys
        now = self._clock()
        max_events = self.retention.max_events
        keys = self._keys
        event_print = fingerprint(topic, data, event, private)
        reply = await self._run(
            "append",
            lambda: self._append_script(
                keys=[
                    keys.seq,
                    keys.epoch,
                    keys.topic(topic),
                    keys.log,
                    keys.trimmed,
                    keys.topics,
                    once,
                    keys.forgotten,
                    keys.bytes,
                    keys.held_keys,
                    keys.log_bytes,
                ],
                args=[
                    topic,
                    data,
                    event or "",
                    "0" if event is None else "1",
                    repr(now),
                    -1 if max_events is None else max_events,
                    self._log_max_len,
                    new_epoch(),
                    ttl,
                    event_print,
                    "1" if private else "0",
                    _bound(self.retention.max_topics),
                    _bound(self.retention.max_bytes),
                    max_keys,
                    _bound(self._log_max_bytes),
                ],
            ),
        )
        self._set_epoch(reply[1])
        if int(reply[0]) < 0:  # a quota is full: nothing was written
            raise quota_error(self.retention, str(reply[2]))
        if len(reply) > 2:  # the token was seen: a retry, or a repeated idempotency key
            seq, first_time, recorded = str(reply[2]).split(" ")
            key = idempotency_key or "(one-time token)"
            return replay(key, recorded, int(seq), float(first_time), topic, data, event, private)
        return StoredEvent(
            seq=int(reply[0]), topic=topic, data=data, event=event, time=now, private=private
        )

    async def read(
        self, topics: Sequence[str], after: int, limit: int, max_bytes: int | None = None
    ) -> ReadResult:
        """Events of ``topics`` after ``after``, merged by ``seq``; see the module docstring."""
        names = list(dict.fromkeys(topics))
        if not names or limit <= 0:
            return ReadResult(events=[])
        keys = self._keys
        gap, more, out = await self._run(
            "read",
            lambda: self._read_script(
                keys=[keys.trimmed, keys.forgotten, *(keys.topic(name) for name in names)],
                args=[max(after, 0), limit, -1 if max_bytes is None else max_bytes, *names],
            ),
        )
        events = [
            parse_entry(
                out[i + 1],
                dict(zip(out[i + 2][::2], out[i + 2][1::2], strict=True)),
                topic=names[int(out[i]) - 1],
            )
            for i in range(0, len(out), 3)
        ]
        return ReadResult(events=events, gap=bool(gap), more=bool(more))

    async def head(self) -> int:
        """The highest ``seq`` minted so far (0 for an empty store)."""
        value = await self._run("head", lambda: self._client.get(self._keys.seq))
        return int(value or 0)

    async def prune(self, now: float) -> int:
        """Apply both retention bounds to every topic at time ``now``; return how many went."""
        max_age, max_events = self.retention.max_age, self.retention.max_events
        cutoff = "" if max_age is None else repr(now - max_age)
        keys = self._keys

        async def prune_all() -> int:
            removed = 0
            async for name in self._client.sscan_iter(keys.topics, count=500):
                removed += await self._prune_script(
                    keys=[keys.topic(name), keys.trimmed, keys.topics, keys.forgotten, keys.bytes],
                    args=[name, cutoff, -1 if max_events is None else max_events],
                )
            return removed

        return await self._run("prune", prune_all)

    # -- helpers -----------------------------------------------------------------------------

    async def _resync(
        self, candidate: str, replace: str, client: aioredis.Redis
    ) -> tuple[str, int]:
        """Run the RESYNC script: ``(epoch, head)``, creating or replacing the epoch."""
        keys = self._keys
        epoch, head = await self._resync_script(
            keys=[keys.seq, keys.epoch], args=[candidate, replace], client=client
        )
        return str(epoch), int(head)

    def _set_epoch(self, epoch: str) -> None:
        self.epoch = epoch

    async def _run(self, operation: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``call``; once more if the connection broke; translate redis-py's errors.

        A pooled connection can be dead without redis-py knowing (reset while
        idle, e.g. by a Redis restart): the first command on it fails with a
        ConnectionError.  The idle connections are likely dead too, so they
        are dropped and the call is repeated, once, on a fresh connection.
        Every operation is safe to repeat: reads trivially, appends through
        their one-time token.  A timeout is not retried (a hung Redis would
        only double the wait).
        """
        with self._translate(operation):
            try:
                return await call()
            except RedisConnectionError:
                await self._pool.disconnect(inuse_connections=False)
            return await call()

    @contextlib.contextmanager
    def _translate(self, operation: str) -> Iterator[None]:
        """Turn redis-py's errors (and socket errors) into BackendUnavailableError.

        A timeout becomes :class:`~ssehub.errors.StoreTimeoutError`: the
        command may have run (or may still run) on the server.
        """
        try:
            yield
        except (RedisTimeoutError, TimeoutError) as exc:
            raise StoreTimeoutError(
                f"redis at {self._where}: {operation} timed out (outcome unknown): {exc}"
            ) from exc
        except (RedisError, OSError) as exc:
            raise BackendUnavailableError(
                f"redis at {self._where}: {operation} failed: {exc}"
            ) from exc
