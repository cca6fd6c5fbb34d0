"""Durable streams on Redis (``--store redis://…``): several nodes act as one server.

Keys (prefix ``ssehub:ds``): ``{p}:meta:{name}`` a hash (``version``,
``meta`` JSON, ``accessed``); ``{p}:rec:{id}`` a Redis stream whose entry
ids are ``{end}-0`` and whose one field ``d`` holds a record's bytes
(``XRANGE`` from ``({after}-0`` is a catch-up read); ``{p}:expiring`` the set
of names with a TTL or expiry time.  A commit is one Lua script
(:data:`COMMIT`): it checks every expected version, then writes the
metadata, copies fork records, appends and trims, and ``PUBLISH``-es each
changed name on ``{p}:wake`` — atomically, whichever node runs it.

Every node subscribes to ``{p}:wake`` and wakes its readers of that name;
a reader also reloads every ``poll_interval`` (a message lost while a
node's subscription reconnects costs latency only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..errors import BackendUnavailableError
from ._model import Record, StreamMeta
from ._store import Change, Notifier, read_step

__all__ = ["COMMIT", "RedisDurableStore"]

logger = logging.getLogger("ssehub.durable")
_T = TypeVar("_T")

#: KEYS: per change (meta, records, dropped records, copy source), then the expiring set.
#: ARGV: channel, change count, then per change: expected, has meta, meta JSON,
#: accessed, expiring, name, drop, copy, copy up to, trim to (-1: none), record
#: count, then (end, data) per record.
COMMIT = """
local n = tonumber(ARGV[2])
local expiring = KEYS[4 * n + 1]
local a = 3
for i = 0, n - 1 do
  local v = tonumber(redis.call('HGET', KEYS[i * 4 + 1], 'version') or '0')
  if v ~= tonumber(ARGV[a]) then return 0 end
  a = a + 11 + 2 * tonumber(ARGV[a + 10])
end
a = 3
for i = 0, n - 1 do
  local mk, rk, dk, sk = KEYS[i * 4 + 1], KEYS[i * 4 + 2], KEYS[i * 4 + 3], KEYS[i * 4 + 4]
  local name = ARGV[a + 5]
  if ARGV[a + 6] == '1' then redis.call('DEL', dk) end
  if ARGV[a + 1] == '0' then
    redis.call('DEL', mk)
    redis.call('SREM', expiring, name)
  else
    redis.call('HSET', mk, 'version', tonumber(ARGV[a]) + 1, 'meta', ARGV[a + 2],
               'accessed', ARGV[a + 3])
    if ARGV[a + 4] == '1' then
      redis.call('SADD', expiring, name)
    else
      redis.call('SREM', expiring, name)
    end
    if ARGV[a + 7] == '1' then
      local upto = ARGV[a + 8] .. '-0'
      local from = '-'
      while true do
        local batch = redis.call('XRANGE', sk, from, upto, 'COUNT', 256)
        for _, entry in ipairs(batch) do
          redis.call('XADD', rk, entry[1], unpack(entry[2]))
        end
        if #batch < 256 then break end
        from = '(' .. batch[#batch][1]
      end
    end
    local count = tonumber(ARGV[a + 10])
    for j = 0, count - 1 do
      redis.call('XADD', rk, ARGV[a + 11 + 2 * j] .. '-0', 'd', ARGV[a + 12 + 2 * j])
    end
    local trim = tonumber(ARGV[a + 9])
    if trim >= 0 then redis.call('XTRIM', rk, 'MINID', (trim + 1) .. '-0') end
  end
  redis.call('PUBLISH', ARGV[1], name)
  a = a + 11 + 2 * tonumber(ARGV[a + 10])
end
return 1
"""

TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'accessed', ARGV[1]) end
return 1
"""


class RedisDurableStore:
    """See the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ssehub:ds",
        poll_interval: float = 1.0,
        command_timeout: float = 5.0,
    ) -> None:
        self.notifier = Notifier()
        self._prefix = prefix
        self._poll_interval = poll_interval
        try:
            self._client = aioredis.Redis.from_url(
                url,
                decode_responses=False,
                socket_connect_timeout=1.5,
                socket_timeout=command_timeout,
                max_connections=64,
            )
        except ValueError as exc:
            raise ValueError(f"invalid Redis URL: {exc}") from exc
        self._commit = self._client.register_script(COMMIT)
        self._touch = self._client.register_script(TOUCH)
        self._tasks: list[asyncio.Task[None]] = []

    def _meta_key(self, name: str) -> str:
        return f"{self._prefix}:meta:{name}"

    def _records_key(self, stream_id: str) -> str:
        return f"{self._prefix}:rec:{stream_id}"

    @property
    def _channel(self) -> str:
        return f"{self._prefix}:wake"

    async def _run(self, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await call()
        except RedisError as exc:
            raise BackendUnavailableError(f"Redis: {exc}") from exc

    async def start(self) -> None:
        await self._run(self._client.ping)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name="ssehub-durable-wake"),
            loop.create_task(self._poll(), name="ssehub-durable-poll"),
        ]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._client.aclose()

    async def _listen(self) -> None:
        """Wake this node's readers of every name another node (or this one) committed."""
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.notifier.notify(bytes(message["data"]).decode("utf-8", "replace"))
            except RedisError as exc:
                logger.warning("durable-stream wake-ups from Redis lost (%s); reconnecting", exc)
                await asyncio.sleep(0.5)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            self.notifier.notify_all()

    async def load(self, name: str) -> StreamMeta | None:
        version, meta, accessed = await self._run(
            lambda: self._client.hmget(self._meta_key(name), ["version", "meta", "accessed"])
        )
        if version is None or meta is None:
            return None
        return StreamMeta.loads(meta, int(version), float(accessed or 0))

    async def commit(self, changes: Sequence[Change]) -> bool:
        keys: list[str] = []
        args: list[Any] = [self._channel, len(changes)]
        for change in changes:
            meta = change.meta
            target = meta.id if meta is not None else "-"
            keys += [
                self._meta_key(change.name),
                self._records_key(target),
                self._records_key(change.drop or "-"),
                self._records_key(change.copy[0] if change.copy else "-"),
            ]
            args += [
                change.expected,
                0 if meta is None else 1,
                meta.dumps() if meta is not None else "",
                repr(meta.accessed) if meta is not None else "0",
                int(meta is not None and (meta.ttl is not None or meta.expires_ts is not None)),
                change.name,
                int(change.drop is not None),
                int(change.copy is not None),
                change.copy[1] if change.copy else 0,
                -1 if change.trim_to is None else change.trim_to,
                len(change.records),
            ]
            for end, data in change.records:
                args += [end, data]
        keys.append(f"{self._prefix}:expiring")
        done = await self._run(lambda: self._commit(keys=keys, args=args))
        return bool(done)

    async def read(self, stream_id: str, after: int, max_bytes: int) -> list[Record]:
        out: list[Record] = []
        size = largest = 0
        start = f"({after}-0"
        key = self._records_key(stream_id)
        while True:
            step = read_step(max_bytes, size, largest)
            entries: list[tuple[bytes, dict[bytes, bytes]]] = await self._run(
                lambda start=start, step=step: self._client.xrange(key, start, "+", count=step)  # type: ignore[misc,arg-type]
            )
            for entry_id, fields in entries:
                data = fields[b"d"]
                if out and size + len(data) > max_bytes:
                    return out
                end = int(entry_id.split(b"-", 1)[0])
                out.append((end, data))
                size += len(data)
                largest = max(largest, len(data))
                start = f"({end}-0"
            if len(entries) < step or size >= max_bytes:
                return out

    async def touch(self, name: str, accessed: float) -> None:
        await self._run(lambda: self._touch(keys=[self._meta_key(name)], args=[repr(accessed)]))

    async def names_with_expiry(self) -> list[str]:
        names: list[bytes] = await self._run(
            lambda: self._client.srandmember(f"{self._prefix}:expiring", 10_000)  # type: ignore[arg-type,return-value]
        )
        return [name.decode("utf-8", "replace") for name in names or []]
