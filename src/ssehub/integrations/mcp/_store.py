"""``HubEventStore``: the ``mcp`` SDK's ``EventStore`` on ssehub's history stores.

The SDK's Streamable HTTP transport stores every message it sends on an SSE
stream (``store_event(stream_id, message)``) and, when a client comes back with
``Last-Event-ID``, asks the store to send what came after it
(``replay_events_after``).  This store keeps those events in an ordinary hub
store — ``memory``, ``sqlite:PATH`` or ``redis://…`` — so every process that
opens the same store sees every event, and a client resumes on any of them.

Conventions:

* **Scope.**  The SDK's stream ids are *not* unique: every session has a
  ``_GET_stream`` and request ids ``1``, ``2``…  A store used as is has the
  empty scope, shared by every session; :meth:`HubEventStore.for_session`
  gives the view of one session (what :class:`~ssehub.integrations.mcp.HubSessionManager`
  hands each transport), whose streams no other session can replay.
* **Topic.**  Each (scope, stream id) is one hub topic ``mcp/{token}``, where
  ``token`` is 32 hex digits of BLAKE2b over the scope and the stream id (so
  any stream id is a valid topic, and a session's tokens can't be guessed
  without its session id).
* **Event id.**  ``{token}_{cursor}``: the stream's token and the hub cursor
  (``{epoch}-{seq}``) of the event.  Replaying an id checks, before sending
  anything, that the store holds an event with that ``seq`` *on that topic*
  and that the topic is the token of *this* scope and the stream id stored
  with the event.  Anything else — garbage, another session's id, an id
  whose ``seq`` is on another stream — is refused: nothing is sent, ``None``
  is returned, a warning is logged and ``stats.rejected`` counts it.  Ids
  never replay across streams or sessions (GHSA-84j6-jc92-77jm).
* **Priming.**  ``store_event(stream_id, None)`` stores a priming event
  (event type ``mcp-priming``); its id resumes like any other and it is never
  replayed (the SDK sends it with empty ``data`` and its ``retry``).
* **Owner.**  :meth:`HubEventStore.claim` records who owns a session (an
  opaque string, e.g. a hash of the credential that opened it) on the hub
  topic ``mcp-owner/{token}``; :meth:`HubEventStore.owner` reads it back on any
  process.  The claim is renewed by the session's own writes at most every
  :data:`_RECLAIM` seconds, so age retention never drops the claim of a session
  that is still talking.
* **Retention and reset.**  The hub's :class:`~ssehub.hub.Retention` bounds
  each stream (count and age).  When history after the id is gone (or the
  store was wiped: another epoch), replay sends nothing and returns
  ``None``, logs it and counts ``stats.resets``; the SDK then ends the
  resumed response, and the client gives the request up as failed rather
  than silently missing a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage, jsonrpc_message_adapter

from ...hub import DEFAULT_STORE, Hub, HubConfig, Retention, StoredEvent, open_backend, parse_cursor
from ._stats import EventStoreCollector, EventStoreStats

__all__ = ["PRIMING_EVENT", "HubEventStore", "StoredMessage"]

logger = logging.getLogger("ssehub.integrations.mcp")

#: The hub event type of a priming event (never replayed).
PRIMING_EVENT = "mcp-priming"
_TOPIC_PREFIX = "mcp/"
_OWNER_PREFIX = "mcp-owner/"
#: Seconds after which a session's write renews its owner claim.
_RECLAIM = 3600.0
_EVENT_ID = re.compile(r"([0-9a-f]{32})_([0-9a-z]{1,32}-[0-9]{1,19})")
#: How long a follower waits for a wake-up before it reads again anyway (seconds).
_FOLLOW_POLL = 1.0


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One stored event of an MCP stream: its SDK event id and message (``None``: priming)."""

    event_id: EventId
    stream_id: StreamId
    message: JSONRPCMessage | None


def _token(scope: str, stream_id: str) -> str:
    material = json.dumps([scope, stream_id]).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(material, digest_size=16, person=b"ssehub-mcp").hexdigest()


def _encode(stream_id: str, message: JSONRPCMessage | None) -> str:
    body = "null" if message is None else message.model_dump_json(by_alias=True, exclude_unset=True)
    return '{"s":' + json.dumps(stream_id) + ',"m":' + body + "}"


class _Shared:
    """The hub behind a store and all its session views: started once, on first use."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.stats = EventStoreStats()
        self.started = False
        self.warned = False
        self.lock = asyncio.Lock()
        self.waiters: dict[str, set[asyncio.Event]] = {}
        hub.add_observer(self._wake)

    def _wake(self, event: StoredEvent, deliveries: int) -> None:
        for waiter in self.waiters.get(event.topic, ()):
            waiter.set()

    async def ready(self) -> Hub:
        if not self.started:
            async with self.lock:
                if not self.started:
                    await self.hub.start()
                    self.started = True
        return self.hub


class HubEventStore(EventStore):
    """An ``mcp`` ``EventStore`` on a hub store URL: ``sqlite:PATH``, ``redis://…``, ``memory``.

    Several instances (in one process or many) on one SQLite file or one Redis
    see one another's events.  The store opens on first use in the running
    event loop; :meth:`aclose` closes it.  ``retention`` bounds each MCP stream
    (default: the hub's, 10 000 events and 24 h); ``config`` is the hub's
    (``max_event_bytes`` bounds one stored message, ``replay_batch`` one read
    step).  See the module docstring for scopes, ids and resets.
    """

    def __init__(
        self,
        store: str = DEFAULT_STORE,
        *,
        retention: Retention | None = None,
        config: HubConfig | None = None,
        scope: str = "",
        _shared: _Shared | None = None,
    ) -> None:
        self.store = store
        self.scope = scope
        self._shared = _shared or _Shared(Hub(open_backend(store, retention), config))
        #: This view's claim and the loop time it was last written (see :meth:`claim`).
        self._claim: str | None = None
        self._claimed_at = 0.0

    # -- views, life cycle, metrics ----------------------------------------

    def for_session(self, session_id: str) -> HubEventStore:
        """The view of this store for one MCP session: only it can replay its streams."""
        return HubEventStore(self.store, scope=session_id, _shared=self._shared)

    @property
    def stats(self) -> EventStoreStats:
        """Counters shared by this store and its session views."""
        return self._shared.stats

    def collector(self) -> EventStoreCollector:
        """A Prometheus collector of :attr:`stats` (``registry.register(store.collector())``)."""
        return EventStoreCollector(self._shared.stats)

    async def start(self) -> None:
        """Open the store now (it otherwise opens on first use)."""
        await self._shared.ready()

    async def aclose(self) -> None:
        """Close the store (and every session view of it).  Idempotent."""
        shared = self._shared
        async with shared.lock:
            if shared.started:
                shared.started = False
                await shared.hub.aclose()

    def topic_of(self, stream_id: StreamId) -> str:
        """The hub topic that holds ``stream_id`` of this scope."""
        return _TOPIC_PREFIX + _token(self.scope, stream_id)

    # -- who owns a session --------------------------------------------------

    async def claim(self, owner: str) -> None:
        """Record ``owner`` as the owner of this session (a scoped view only).

        :class:`~ssehub.integrations.mcp.HubSessionManager` claims each session
        before its id leaves the process, so a resume elsewhere can check it.
        """
        if not self.scope:
            raise ValueError("only a session's view (for_session) has an owner")
        hub = await self._shared.ready()
        await hub.publish(self._owner_topic(), owner)
        self._claim, self._claimed_at = owner, asyncio.get_running_loop().time()

    async def owner(self) -> str | None:
        """The owner claimed for this session, on any process; ``None`` when none is held."""
        hub = await self._shared.ready()
        found = await hub.read([self._owner_topic()], 0, 1)
        return found.events[0].data if found.events else None

    def _owner_topic(self) -> str:
        return _OWNER_PREFIX + _token(self.scope, "")

    async def _renew_claim(self) -> None:
        claim = self._claim
        if claim is not None and asyncio.get_running_loop().time() - self._claimed_at > _RECLAIM:
            await self.claim(claim)

    # -- the EventStore contract --------------------------------------------

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Store ``message`` (``None``: a priming event) on ``stream_id``; return its event id."""
        hub = await self._shared.ready()
        if not self.scope and not self._shared.warned:
            self._shared.warned = True
            logger.warning(
                "HubEventStore used without a session scope: MCP stream ids repeat across "
                "sessions, so resume can't tell them apart; serve it with HubSessionManager"
            )
        token = _token(self.scope, stream_id)
        event = PRIMING_EVENT if message is None else None
        published = await hub.publish(_TOPIC_PREFIX + token, _encode(stream_id, message), event)
        if message is None:
            self.stats.primed += 1
        else:
            self.stats.stored += 1
        await self._renew_claim()
        return f"{token}_{published.id}"

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        """Send the messages of ``last_event_id``'s stream stored after it; return that stream.

        ``None`` (nothing sent) when the id is not one of this scope's, or when
        the history after it is gone (see the module docstring).
        """
        return await self.replay(last_event_id, send_callback)

    # -- replay, and following a stream another process still writes ---------

    async def locate(self, last_event_id: EventId) -> StreamId | None:
        """The stream ``last_event_id`` resumes if this scope may replay it, else ``None``."""
        checked = await self._check(await self._shared.ready(), last_event_id)
        return None if checked is None else checked[1]

    async def replay(
        self, last_event_id: EventId, send_callback: EventCallback, *, follow: bool = False
    ) -> StreamId | None:
        """:meth:`replay_events_after`; with ``follow``, see :meth:`messages`."""
        hub = await self._shared.ready()
        checked = await self._check(hub, last_event_id)
        if checked is None:
            return None
        async for message in self._messages(hub, *checked, follow=follow):
            assert message.message is not None
            await send_callback(EventMessage(message.message, message.event_id))
        return checked[1]

    async def messages(
        self, last_event_id: EventId, *, follow: bool = True
    ) -> AsyncIterator[StoredMessage]:
        """The messages of ``last_event_id``'s stream after it, oldest first.

        With ``follow``, then every message stored later by any process on the
        store, until the caller stops iterating.  Nothing when the id is
        refused; it ends if history is lost under it (both logged).
        """
        hub = await self._shared.ready()
        checked = await self._check(hub, last_event_id)
        if checked is not None:
            async for message in self._messages(hub, *checked, follow=follow):
                yield message

    async def _messages(
        self, hub: Hub, token: str, stream_id: str, after: int, *, follow: bool
    ) -> AsyncIterator[StoredMessage]:
        self.stats.replays += 1
        topic = _TOPIC_PREFIX + token
        waiter = asyncio.Event()
        waiters = self._shared.waiters.setdefault(topic, set())
        waiters.add(waiter)
        try:
            while True:
                waiter.clear()
                result = await hub.read([topic], after, hub.config.replay_batch)
                if result.gap:
                    self._reset(f"{token}_{hub.format_cursor(after)}", "history was removed")
                    return
                for row in result.events:
                    after = row.seq
                    if row.event != PRIMING_EVENT:
                        self.stats.replayed += 1
                        yield self._decode(token, row)
                if result.more:
                    continue
                if not follow:
                    return
                await _wait(waiter, _FOLLOW_POLL)
        finally:
            waiters.discard(waiter)
            if not waiters:
                self._shared.waiters.pop(topic, None)

    async def _check(self, hub: Hub, last_event_id: str) -> tuple[str, str, int] | None:
        """(token, stream id, seq) of an id this scope may replay, else ``None`` (logged)."""
        match = _EVENT_ID.fullmatch(last_event_id)
        cursor = parse_cursor(match.group(2)) if match else None
        if match is None or cursor is None:
            self._reject(last_event_id, "not an event id of this store")
            return None
        token = match.group(1)
        if cursor.epoch != hub.epoch:
            self._reset(last_event_id, "the store was replaced (another epoch)")
            return None
        found = await hub.read([_TOPIC_PREFIX + token], cursor.seq - 1, 1)
        if found.gap:
            self._reset(last_event_id, "retention removed it")
            return None
        if not found.events or found.events[0].seq != cursor.seq:
            self._reject(last_event_id, "no such event on its stream")
            return None
        stream_id = self._decode(token, found.events[0]).stream_id
        if _token(self.scope, stream_id) != token:
            self._reject(last_event_id, "it belongs to another session")
            return None
        return token, stream_id, cursor.seq

    def _decode(self, token: str, row: StoredEvent) -> StoredMessage:
        body = json.loads(row.data)
        raw = body["m"]
        message = None if raw is None else jsonrpc_message_adapter.validate_python(raw)
        event_id = f"{token}_{self._shared.hub.format_cursor(row.seq)}"
        return StoredMessage(event_id, body["s"], message)

    def _reject(self, last_event_id: str, why: str) -> None:
        self.stats.rejected += 1
        logger.warning("MCP replay refused for Last-Event-ID %.80r: %s", last_event_id, why)

    def _reset(self, last_event_id: str, why: str) -> None:
        self.stats.resets += 1
        logger.warning(
            "MCP replay after %.80r impossible (%s); the client must start over", last_event_id, why
        )


async def _wait(waiter: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(waiter.wait(), timeout)
