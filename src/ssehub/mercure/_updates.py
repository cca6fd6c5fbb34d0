"""Mercure updates as the hub stores them, and as they go on the wire.

Every Mercure update is one hub event on the adapter topic
:data:`ADAPTER_TOPIC` (reserved with ``Hub.adopt_topic``), so every update
shares the hub's one ``seq`` order, its history, its stores and its nodes.
The event's ``data`` is a JSON envelope written by :func:`dump`::

    {"i": id or null, "t": [canonical, *alternates], "d": data, "y": type, "r": retry}

and the hub's ``private`` flag is the update's.  ``i`` comes first, so a
publisher id is found in history without decoding (:func:`id_prefix`).

Ids on the wire: a publisher-supplied ``id`` as given; otherwise the hub's
cursor, as the IRI ``urn:ssehub:{epoch}-{seq}`` (:func:`hub_id`).  Both work
as ``Last-Event-ID`` (see ``_cursors``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import EncodeError
from ..hub import StoredEvent, format_cursor
from ..protocol import ServerSentEvent, encode

__all__ = ["ADAPTER_TOPIC", "HUB_ID_PREFIX", "Update", "UpdateCodec", "dump", "hub_id", "id_prefix"]

#: The hub topic that carries every Mercure update.
ADAPTER_TOPIC = "ssehub/mercure"
#: Hub-generated ids are this prefix and the hub's cursor.
HUB_ID_PREFIX = "urn:ssehub:"


@dataclass(frozen=True, slots=True)
class Update:
    """One Mercure update: ``topics[0]`` is canonical, the rest alternates."""

    topics: tuple[str, ...]
    data: str
    id: str | None = None
    type: str | None = None
    retry: int | None = None
    private: bool = False


def dump(update: Update) -> str:
    """The envelope stored as the hub event's ``data``."""
    return json.dumps(
        {
            "i": update.id,
            "t": list(update.topics),
            "d": update.data,
            "y": update.type,
            "r": update.retry,
        },
        ensure_ascii=False,
    )


def id_prefix(update_id: str) -> str:
    """How an envelope carrying ``update_id`` starts (a cheap test before decoding)."""
    return '{"i": ' + json.dumps(update_id, ensure_ascii=False) + ","


def hub_id(epoch: str, seq: int) -> str:
    """The id of an update published without one."""
    return HUB_ID_PREFIX + format_cursor(epoch, seq)


def _load(stored: StoredEvent) -> Update | None:
    try:
        raw: Any = json.loads(stored.data)
        topics = raw["t"]
        update = Update(
            tuple(str(t) for t in topics),
            str(raw["d"]),
            raw["i"] if isinstance(raw["i"], str) else None,
            raw["y"] if isinstance(raw["y"], str) else None,
            raw["r"] if isinstance(raw["r"], int) else None,
            stored.private,
        )
    except (ValueError, KeyError, TypeError):
        return None
    return update if update.topics else None


class UpdateCodec:
    """Decodes envelopes (the last one is kept: one decode per event for all
    subscribers) and encodes them for the wire; ``epoch()`` is the store's epoch."""

    __slots__ = ("_epoch", "_last", "_last_seq")

    def __init__(self, epoch: Callable[[], str]) -> None:
        self._epoch = epoch
        self._last_seq = -1
        self._last: Update | None = None

    def decode(self, stored: StoredEvent) -> Update | None:
        """The update a stored row carries; ``None`` for a row that is no envelope."""
        if stored.seq != self._last_seq:
            self._last = _load(stored)
            self._last_seq = stored.seq
        return self._last

    def encode(self, stored: StoredEvent) -> bytes:
        """The wire chunk of a stored update; raises :class:`EncodeError` for a bad row."""
        update = self.decode(stored)
        if update is None:
            raise EncodeError("not a Mercure update envelope")
        return encode(
            ServerSentEvent(
                data=update.data,
                event=update.type,
                id=update.id if update.id is not None else hub_id(self._epoch(), stored.seq),
                retry=update.retry,
            )
        )
