"""The Durable Streams rules (PROTOCOL.md §4–§9), decided once for every store.

Each operation loads the stream's metadata, decides in plain Python, and
commits the outcome with the store's compare-and-set (:mod:`._store`); a
commit that lost a race is decided again from fresh metadata.  Answers are
:class:`Answer` values (status, headers, an error code and message) that
``_api`` renders; nothing here knows HTTP beyond the status numbers of the
protocol.

Conventions: ``Stream-Seq`` is scoped per stream; producer state is kept
with the stream's metadata (as long as the stream, at most
:data:`MAX_PRODUCERS` per stream, idle ones forgotten after 7 days); forks
copy the source's records up to the fork point when created (copy-on-fork),
so a fork's reads and live waits never involve its source.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from ._jsonmode import JsonBodyError, split_messages
from ._model import Record, StreamMeta, base_type, new_stream_id
from ._store import Change, DurableStore
from ._wire import format_offset

__all__ = [
    "MAX_PRODUCERS",
    "Answer",
    "AppendRequest",
    "CreateRequest",
    "DurableStreams",
    "Producer",
    "Snapshot",
]

MAX_PRODUCERS = 10_000
PRODUCER_IDLE = 7 * 24 * 3600.0
_MAX_RETRIES = 64
DEFAULT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Answer:
    """An operation's outcome: an HTTP status, headers, and (for refusals) an error."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    code: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Producer:
    id: str
    epoch: int
    seq: int


@dataclass(frozen=True, slots=True)
class CreateRequest:
    content_type: str | None
    ttl: int | None
    expires_at: str | None
    expires_ts: float | None
    closed: bool
    body: bytes
    forked_from: str | None = None
    fork_offset: str | None = None
    fork_position: int | None = None
    fork_sub: int | None = None


@dataclass(frozen=True, slots=True)
class AppendRequest:
    content_type: str | None
    body: bytes
    closed: bool
    stream_seq: str | None
    producer: Producer | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A live stream's metadata as a reader sees it (never expired, never soft-deleted)."""

    name: str
    meta: StreamMeta


#: A decision to commit: the changes, and the answer once they are committed.
Decision = tuple[list[Change], Answer]


def _refusal(status: int, code: str, message: str, **headers: str) -> Answer:
    return Answer(status, {k.replace("_", "-"): v for k, v in headers.items()}, code, message)


_NOT_FOUND = _refusal(404, "not_found", "no such stream")
_GONE = _refusal(410, "gone", "the stream was deleted (its forks still read it)")
_BUSY = _refusal(503, "store_busy", "too many concurrent writers on this stream; retry")


class DurableStreams:
    """Create, append, close, delete and look up durable streams on one store."""

    def __init__(
        self,
        store: DurableStore,
        *,
        clock: Callable[[], float] = time.time,
        max_bytes: int | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        #: Per-stream bytes kept (oldest records trimmed above it; older offsets → 410).
        self.max_bytes = max_bytes

    # -- lookups ------------------------------------------------------------------------------

    async def lookup(self, name: str) -> Snapshot | Answer:
        """The stream, or the 404 / 410 a direct operation on it gets."""
        meta = await self.store.load(name)
        if meta is None:
            return _NOT_FOUND
        if meta.soft_deleted:
            return _GONE
        if meta.expired(self.clock()):
            return _GONE if meta.refs else _NOT_FOUND
        return Snapshot(name, meta)

    async def touch(self, snapshot: Snapshot) -> None:
        """A read or live wait resets the sliding TTL (PROTOCOL.md §5.1)."""
        if snapshot.meta.ttl is not None:
            await self.store.touch(snapshot.name, self.clock())

    # -- create -------------------------------------------------------------------------------

    async def create(self, name: str, request: CreateRequest) -> Answer:
        return await self._settle(lambda: self._decide_create(name, request))

    async def _settle(self, decide: Callable[[], Awaitable[Answer | Decision]]) -> Answer:
        """Decide and commit until a commit wins (or :data:`_MAX_RETRIES` lost races: 503)."""
        for _ in range(_MAX_RETRIES):
            decided = await decide()
            if isinstance(decided, Answer):
                return decided
            changes, answer = decided
            if await self.store.commit(changes):
                for change in changes:
                    self.store.notifier.notify(change.name)
                return answer
        return _BUSY

    async def _decide_create(self, name: str, request: CreateRequest) -> Answer | Decision:
        now = self.clock()
        existing = await self.store.load(name)
        changes: list[Change] = []
        expected = 0
        if existing is not None:
            if existing.soft_deleted or (existing.expired(now) and existing.refs):
                return _refusal(
                    409, "stream_deleted", "this stream was deleted but its forks still use it"
                )
            if not existing.expired(now):
                return self._same_config(existing, request)
            expected = existing.version  # an expired stream is replaced
        source: StreamMeta | None = None
        content_type = request.content_type
        fork_pos = 0
        prefix: bytes | None = None
        if request.forked_from is not None:
            source = await self.store.load(request.forked_from)
            if source is None or (source.expired(now) and not source.refs):
                return _refusal(
                    404, "source_not_found", "the Stream-Forked-From stream does not exist"
                )
            if source.soft_deleted or source.expired(now):
                return _refusal(409, "source_deleted", "the source stream was deleted")
            if content_type is not None and base_type(content_type) != base_type(
                source.content_type
            ):
                return _refusal(
                    409, "content_type_mismatch", "Content-Type differs from the source's"
                )
            content_type = content_type or source.content_type
            fork_pos = source.tail if request.fork_position is None else request.fork_position
            if fork_pos > source.tail:
                return _refusal(
                    400, "invalid_fork_offset", "Stream-Fork-Offset is past the source's tail"
                )
            if fork_pos < source.start:
                return _refusal(
                    400, "invalid_fork_offset", "Stream-Fork-Offset is before retained data"
                )
            if request.fork_sub:
                prefix_or_answer = await self._sub_prefix(source, fork_pos, request.fork_sub)
                if isinstance(prefix_or_answer, Answer):
                    return prefix_or_answer
                prefix = prefix_or_answer
        content_type = content_type or DEFAULT_TYPE
        ttl, expires_at, expires_ts = request.ttl, request.expires_at, request.expires_ts
        if source is not None and ttl is None and expires_at is None:
            ttl, expires_at, expires_ts = source.ttl, source.expires_at, source.expires_ts
        meta = StreamMeta(
            id=new_stream_id(),
            content_type=content_type,
            created=now,
            accessed=now,
            ttl=ttl,
            expires_at=expires_at,
            expires_ts=expires_ts,
            closed=request.closed,
            tail=fork_pos,
            start=source.start if source is not None else 0,
            kept=(fork_pos - source.start) if source is not None else 0,
        )
        records: list[Record] = []
        if prefix:
            meta.tail += len(prefix)
            meta.kept += len(prefix)
            meta.fork_sub = request.fork_sub or 0
            records.append((meta.tail, prefix))
        if source is not None:
            meta.forked_from = request.forked_from
            meta.fork_offset = format_offset(fork_pos)
            source_next = replace(source, refs=source.refs + 1, producers=dict(source.producers))
            assert request.forked_from is not None
            changes.append(Change(request.forked_from, source.version, source_next))
        if request.body:
            data = self._stored_body(meta, request.body, allow_empty=True)
            if isinstance(data, Answer):
                return data
            if data:
                meta.tail += len(data)
                meta.kept += len(data)
                records.append((meta.tail, data))
        changes.append(
            Change(
                name,
                expected,
                meta,
                records,
                copy=(source.id, fork_pos)
                if source is not None and fork_pos > source.start
                else None,
                drop=existing.id if existing is not None else None,
            )
        )
        headers = {
            "Content-Type": meta.content_type,
            "Stream-Next-Offset": format_offset(meta.tail),
        }
        if meta.closed:
            headers["Stream-Closed"] = "true"
        return changes, Answer(201, headers)

    def _same_config(self, existing: StreamMeta, request: CreateRequest) -> Answer:
        same = (
            base_type(
                request.content_type
                or (existing.content_type if request.forked_from else DEFAULT_TYPE)
            )
            == base_type(existing.content_type)
            and request.ttl == existing.ttl
            and request.expires_at == existing.expires_at
            and request.closed == existing.closed
            and request.forked_from == existing.forked_from
            and (request.fork_offset is None or request.fork_offset == existing.fork_offset)
            and (request.fork_sub or 0) == existing.fork_sub
        )
        if not same:
            return _refusal(409, "stream_exists", "a stream with another configuration exists here")
        headers = {
            "Content-Type": existing.content_type,
            "Stream-Next-Offset": format_offset(existing.tail),
        }
        if existing.closed:
            headers["Stream-Closed"] = "true"
        return Answer(200, headers)

    async def _sub_prefix(self, source: StreamMeta, fork_pos: int, sub: int) -> bytes | Answer:
        records = await self.store.read(source.id, fork_pos, 1)
        if not records:
            return _refusal(400, "invalid_fork_sub_offset", "no data past Stream-Fork-Offset")
        data = records[0][1]
        if source.is_json:
            messages = split_messages(b"[" + data + b"]", allow_empty=True)
            if sub > len(messages):
                return _refusal(400, "invalid_fork_sub_offset", "Stream-Fork-Sub-Offset overshoots")
            return ",".join(messages[:sub]).encode()
        if sub > len(data):
            return _refusal(400, "invalid_fork_sub_offset", "Stream-Fork-Sub-Offset overshoots")
        return data[:sub]

    @staticmethod
    def _stored_body(meta: StreamMeta, body: bytes, *, allow_empty: bool) -> bytes | Answer:
        if not meta.is_json:
            return body
        try:
            messages = split_messages(body, allow_empty=allow_empty)
        except JsonBodyError as exc:
            return _refusal(400, "invalid_json", str(exc))
        return ",".join(messages).encode()

    # -- append / close -----------------------------------------------------------------------

    async def append(self, name: str, request: AppendRequest) -> Answer:
        return await self._settle(lambda: self._decide_append(name, request))

    async def _decide_append(self, name: str, request: AppendRequest) -> Answer | Decision:
        now = self.clock()
        found = await self.lookup(name)
        if isinstance(found, Answer):
            return found
        meta = found.meta
        producer = request.producer
        closing_only = request.closed and not request.body
        if not request.body and not request.closed:
            return _refusal(400, "empty_body", "an append needs a body (or Stream-Closed: true)")
        if meta.closed:
            if producer is not None and meta.closed_by == [
                producer.id,
                producer.epoch,
                producer.seq,
            ]:
                return Answer(204, self._closed_headers(meta, producer, producer.seq))
            if closing_only and producer is None:
                return Answer(
                    204, {"Stream-Next-Offset": format_offset(meta.tail), "Stream-Closed": "true"}
                )
            return _refusal(
                409,
                "stream_closed",
                "the stream is closed",
                Stream_Closed="true",
                Stream_Next_Offset=format_offset(meta.tail),
            )
        if not closing_only:
            if request.content_type is None:
                return _refusal(400, "missing_content_type", "an append needs a Content-Type")
            if base_type(request.content_type) != base_type(meta.content_type):
                return _refusal(
                    409, "content_type_mismatch", "Content-Type differs from the stream's"
                )
        producers = dict(meta.producers)
        if producer is not None:
            verdict = self._check_producer(producers, producer, now)
            if verdict is not None:
                return verdict
        last_seq = meta.last_seq
        if request.stream_seq is not None and last_seq is not None:  # noqa: SIM102
            if request.stream_seq.encode() <= last_seq.encode():
                return _refusal(409, "sequence_conflict", "Stream-Seq is not above the last one")
        new = replace(meta, producers=producers, accessed=now)
        records: list[Record] = []
        if request.body:
            data = self._stored_body(meta, request.body, allow_empty=False)
            if isinstance(data, Answer):
                return data
            new.tail += len(data)
            new.kept += len(data)
            records.append((new.tail, data))
        if request.stream_seq is not None:
            new.last_seq = request.stream_seq
        trim_to = self._retain(new)
        headers = {"Stream-Next-Offset": format_offset(new.tail)}
        if request.closed:
            new.closed = True
            headers["Stream-Closed"] = "true"
            if producer is not None:
                new.closed_by = [producer.id, producer.epoch, producer.seq]
        status = 204
        if producer is not None:
            headers["Producer-Epoch"] = str(producer.epoch)
            headers["Producer-Seq"] = str(producer.seq)
            status = 204 if closing_only else 200
        return [Change(name, meta.version, new, records, trim_to=trim_to)], Answer(status, headers)

    def _retain(self, meta: StreamMeta) -> int | None:
        """Apply the byte bound: the position records are trimmed to, if any."""
        if self.max_bytes is None or meta.kept <= self.max_bytes:
            return None
        meta.start = max(meta.start, meta.tail - self.max_bytes)
        meta.kept = meta.tail - meta.start
        return meta.start

    @staticmethod
    def _closed_headers(meta: StreamMeta, producer: Producer, seq: int) -> dict[str, str]:
        return {
            "Stream-Next-Offset": format_offset(meta.tail),
            "Stream-Closed": "true",
            "Producer-Epoch": str(producer.epoch),
            "Producer-Seq": str(seq),
        }

    @staticmethod
    def _check_producer(
        producers: dict[str, list[object]], producer: Producer, now: float
    ) -> Answer | None:
        """PROTOCOL.md §5.2.1's validation; on acceptance ``producers`` is updated."""
        for key in [k for k, v in producers.items() if now - float(v[2]) > PRODUCER_IDLE]:  # type: ignore[arg-type]
            del producers[key]
        state = producers.get(producer.id)
        if state is None:
            if producer.seq != 0:
                return _refusal(
                    409,
                    "producer_sequence_gap",
                    "a new producer starts at Producer-Seq 0",
                    Producer_Expected_Seq="0",
                    Producer_Received_Seq=str(producer.seq),
                )
        else:
            epoch, last = int(state[0]), int(state[1])  # type: ignore[call-overload]
            if producer.epoch < epoch:
                return _refusal(
                    403,
                    "stale_producer_epoch",
                    "a newer producer epoch exists",
                    Producer_Epoch=str(epoch),
                )
            if producer.epoch == epoch:
                if producer.seq <= last:
                    return Answer(204, {"Producer-Epoch": str(epoch), "Producer-Seq": str(last)})
                if producer.seq != last + 1:
                    return _refusal(
                        409,
                        "producer_sequence_gap",
                        "Producer-Seq skips ahead",
                        Producer_Expected_Seq=str(last + 1),
                        Producer_Received_Seq=str(producer.seq),
                    )
            elif producer.seq != 0:
                return _refusal(
                    400, "invalid_producer_seq", "a new producer epoch starts at Producer-Seq 0"
                )
        producers[producer.id] = [producer.epoch, producer.seq, now]
        if len(producers) > MAX_PRODUCERS:
            oldest = min(producers, key=lambda key: float(producers[key][2]))  # type: ignore[arg-type]
            del producers[oldest]
        return None

    # -- delete -------------------------------------------------------------------------------

    async def delete(self, name: str) -> Answer:
        return await self._settle(lambda: self._decide_delete(name))

    async def _decide_delete(self, name: str) -> Answer | Decision:
        found = await self.lookup(name)
        if isinstance(found, Answer):
            return found
        meta = found.meta
        if meta.refs:
            return [Change(name, meta.version, replace(meta, soft_deleted=True))], Answer(204)
        return await self._remove_chain(name, meta), Answer(204)

    async def _remove_chain(self, name: str, meta: StreamMeta) -> list[Change]:
        """Remove ``name``, then every soft-deleted source it was the last fork of."""
        changes = [Change(name, meta.version, None, drop=meta.id)]
        parent_name = meta.forked_from
        while parent_name is not None:
            parent = await self.store.load(parent_name)
            if parent is None:
                break
            refs = max(0, parent.refs - 1)
            if refs or not parent.soft_deleted:
                changes.append(Change(parent_name, parent.version, replace(parent, refs=refs)))
                break
            changes.append(Change(parent_name, parent.version, None, drop=parent.id))
            parent_name = parent.forked_from
        return changes

    async def sweep(self, names: Sequence[str]) -> int:
        """Remove the expired streams among ``names`` that no fork uses; how many went."""
        removed = 0
        now = self.clock()
        for name in names:
            meta = await self.store.load(name)
            if meta is None or not meta.expired(now):
                continue
            if meta.refs:
                if not meta.soft_deleted:
                    await self.store.commit(
                        [Change(name, meta.version, replace(meta, soft_deleted=True))]
                    )
                continue
            if await self.store.commit(await self._remove_chain(name, meta)):
                self.store.notifier.notify(name)
                removed += 1
        return removed
