"""The store quotas of :class:`~ssehub.hub.Retention`: distinct topics and stored bytes.

Every backend checks both *before* it writes, against the store's own counts
(the memory store's dicts, the SQLite file's ``topics`` table and its
``meta.stored_bytes`` counter inside the write transaction, Redis's
``P:topics`` set and ``P:bytes`` counter inside the append script), so the
bound holds for every process and node sharing the store.

Conventions:

* A topic counts while it has events; retention forgetting a topic frees its
  place.  Only an append that would *create* a topic is refused by
  ``max_topics``: publishing to a topic that exists goes on.
* Stored bytes are :func:`._base.event_size` summed over the events held.  An
  append is refused when the store would hold more than ``max_bytes`` after
  it, counting the events the append itself pushes out of its topic by the
  ``max_events`` bound (so a topic that rolls at its count bound keeps rolling
  when the store is full).
* A refusal stores nothing and raises :class:`~ssehub.errors.QuotaExceededError`
  (``kind`` ``"topics"`` or ``"bytes"``), answered ``507`` by the server.
"""

from __future__ import annotations

from ...errors import QuotaExceededError
from .._types import Retention

__all__ = ["bytes_refusal", "quota_error", "topics_refusal"]


def quota_error(retention: Retention, kind: str) -> QuotaExceededError:
    """The refusal of an append by the ``kind`` quota (``"topics"`` or ``"bytes"``)."""
    if kind == "topics":
        return QuotaExceededError(
            f"the store holds its quota of {retention.max_topics} topics; publish to an "
            "existing topic, or wait until retention forgets one",
            "topics",
        )
    return QuotaExceededError(
        f"the store holds its quota of {retention.max_bytes} bytes of events; nothing stored, "
        "publish again when retention has freed space",
        "bytes",
    )


def topics_refusal(
    retention: Retention, *, new_topic: bool, topics: int
) -> QuotaExceededError | None:
    """The error for an append that would create topic number ``topics + 1``, if over quota."""
    limit = retention.max_topics
    if not new_topic or limit is None or topics < limit:
        return None
    return quota_error(retention, "topics")


def bytes_refusal(retention: Retention, *, stored_after: int) -> QuotaExceededError | None:
    """The error for an append after which the store would hold ``stored_after`` bytes."""
    limit = retention.max_bytes
    if limit is None or stored_after <= limit:
        return None
    return quota_error(retention, "bytes")
