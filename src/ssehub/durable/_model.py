"""What a store keeps about one durable stream: its metadata and its records.

Conventions:

* A stream's **records** are ``(end, data)``: ``data`` is the bytes of one
  append (for JSON streams: the append's messages, each as sent, joined by
  ``,``) and ``end`` its position after the record — the offset handed out.
  Positions grow by the record's length, so they are unique and increasing.
* Records live under the stream's ``id`` (a random incarnation id), not its
  name: a stream deleted and created again never shows the old records.
* ``version`` counts committed changes of the metadata; stores commit a
  change only if the version is still the one it was decided on (optimistic
  concurrency), so every decision of :mod:`._rules` is atomic on every store.
* ``accessed`` (the sliding TTL's clock) is written without a version bump.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Record", "StreamMeta", "new_stream_id"]

#: One stored append: (position after it, its bytes).
Record = tuple[int, bytes]


def new_stream_id() -> str:
    """A fresh incarnation id (records are keyed by it)."""
    return secrets.token_hex(8)


@dataclass(slots=True)
class StreamMeta:
    """One stream's state: configuration, tail, closure, writers, forks."""

    id: str
    content_type: str
    created: float
    accessed: float
    version: int = 0
    ttl: int | None = None
    expires_at: str | None = None
    expires_ts: float | None = None
    closed: bool = False
    #: ``[producer id, epoch, seq]`` of the append that closed the stream.
    closed_by: list[Any] | None = None
    tail: int = 0
    #: Earliest retained position: reads from before it are 410.
    start: int = 0
    #: Bytes of records kept (for the byte retention bound).
    kept: int = 0
    forked_from: str | None = None
    fork_offset: str | None = None
    fork_sub: int = 0
    refs: int = 0
    soft_deleted: bool = False
    #: producer id → ``[epoch, last seq, last update time]``.
    producers: dict[str, list[Any]] = field(default_factory=dict)
    #: Last ``Stream-Seq`` accepted.
    last_seq: str | None = None

    def expired(self, now: float) -> bool:
        """Past its ``Stream-Expires-At``, or idle longer than its TTL."""
        if self.expires_ts is not None and now >= self.expires_ts:
            return True
        return self.ttl is not None and now >= self.accessed + self.ttl

    @property
    def is_json(self) -> bool:
        return base_type(self.content_type) == "application/json"

    def dumps(self) -> str:
        """The metadata as JSON (without ``version`` and ``accessed``, kept beside it)."""
        body = asdict(self)
        del body["version"], body["accessed"]
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | bytes, version: int, accessed: float) -> StreamMeta:
        return cls(**json.loads(text), version=version, accessed=accessed)


def base_type(content_type: str) -> str:
    """``text/plain; charset=utf-8`` → ``text/plain`` (lower case)."""
    return content_type.split(";", 1)[0].strip().lower()
