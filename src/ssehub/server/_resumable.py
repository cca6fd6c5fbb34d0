"""Your own generator, resumable: run it once, into a topic; serve every reader from the topic.

:meth:`HubApp.resumable <ssehub.server.HubApp.resumable>` turns a producer (an
async generator: a slow LLM answer, a job's progress) into a stream that a
client resumes exactly after a reconnect, on any process that shares the store.

The first request for a topic *claims* it: it publishes a claim event
(:data:`CLAIM_EVENT`, empty data) with an idempotency key derived from the
topic, so on one store exactly one claim is stored within the idempotency
window (24 h) and every other request — in this process or another — gets
that same claim back.  The process whose claim was stored runs the producer
in a background task and publishes each item it yields into the topic
(``str``: the data; a mapping: ``data`` (non-string sent as JSON), ``event``;
a :class:`~ssehub.protocol.ServerSentEvent`: its ``data`` and ``event``; ids
are the hub's).  Every reader is served the topic like ``GET /topics/…``:
after its own ``Last-Event-ID`` when it sends one, else from just after the
claim, so a late reader still gets everything.  The producer runs to its end
whether or not anyone is reading; the app's lifespan cancels what still runs
at shutdown.  Use one topic per run (``answers/{id}``): a topic is produced at
most once per idempotency window.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterable, Callable
from typing import Any

from ..hub import Hub
from ..protocol import ServerSentEvent

__all__ = ["CLAIM_EVENT", "Producers"]

logger = logging.getLogger("ssehub.server")

#: The event type of a topic's claim (never sent to readers: they start after it).
CLAIM_EVENT = "ssehub-claim"

Producer = Callable[[], AsyncIterable[Any]]


def _fields(item: Any) -> tuple[str, str | None]:
    if isinstance(item, str):
        return item, None
    if isinstance(item, ServerSentEvent):
        return item.data or "", item.event
    data = item.get("data", "")
    if not isinstance(data, str):
        data = json.dumps(data, ensure_ascii=False)
    return data, item.get("event")


class Producers:
    """The producers this process runs, one per claimed topic."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._tasks: set[asyncio.Task[None]] = set()

    async def claim(self, topic: str, produce: Producer) -> str:
        """Claim ``topic`` (running ``produce`` if this call won it); return the claim's cursor."""
        digest = hashlib.sha256(topic.encode("utf-8", "surrogatepass")).hexdigest()
        claim = await self.hub.publish(
            topic, "", CLAIM_EVENT, idempotency_key=f"ssehub-claim:{digest}"
        )
        if not claim.replayed:
            task = asyncio.create_task(self._run(topic, produce), name=f"ssehub-produce:{topic}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return claim.id

    async def _run(self, topic: str, produce: Producer) -> None:
        try:
            async for item in produce():
                data, event = _fields(item)
                await self.hub.publish(topic, data, event)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("the producer of %s failed", topic)

    async def aclose(self) -> None:
        """Cancel every producer still running and wait for them."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
