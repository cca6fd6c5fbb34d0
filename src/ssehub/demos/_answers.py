"""Chat answers as hub topics: each answer is published to ``chat/<answer_id>``.

An answer runs as a background task, independent of any browser connection,
so a page reloaded mid-answer finds it still going (or done) and resumes from
its cursor with no repeats and no gaps.  Its events (all *private*: the hub's
topic API shows them to no client without a token granting them) and its
lifecycle, read from the store by any node, are described in ``_lifecycle``.

* **Readers.**  A running answer that nobody reads — no stream of its topic
  here (:meth:`~ssehub.hub.Hub.subscriber_count`), no ``reader`` event from
  another node — for ``reader_grace`` seconds is stopped upstream (its
  responder is cancelled, closing the ``--llm-url`` request).  :meth:`AnswerBook.tick`
  checks, with the injected monotonic ``clock``.
* **Limits per client.**  At most ``max_running_per_client`` answers run at
  once per owner (browser session) and per client address, ``max_running``
  in all; the counts come from the running answers, so the per-client table
  is never larger than they are.
* **Bounded memory.**  Each answer is at most ``max_chars`` characters and
  ``max_seconds`` long; only the last ``keep_finished`` finished answers are
  remembered.  Checking an answer's history (:meth:`AnswerBook.settle`) reads
  a bounded number of events and bytes, under a lock of that answer only.

An answer whose task died with its hub process (a restart) is *orphaned*: its
topic has history but no terminal event.  :meth:`AnswerBook.settle` publishes
the missing ``error`` the first time someone asks for such an answer, so no
page waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import HubError
from ..hub import Hub, StoredEvent
from ._lifecycle import (
    ANSWER_ID,
    READER_EVENT,
    STOP_EVENT,
    TERMINAL_EVENTS,
    RunInfo,
    answer_of,
    owner_of,
    scan,
    state_of,
)
from ._responders import ChatMessage, Responder
from ._writer import AnswerWriter

__all__ = ["ANSWER_ID", "TERMINAL_EVENTS", "Answer", "AnswerBook", "RunInfo", "TooManyAnswersError"]

logger = logging.getLogger("ssehub.demos")

INTERRUPTED = "回答被中断：hub 重启了（the answer was interrupted by a restart）"


class TooManyAnswersError(Exception):
    """Too many answers are being written (in all, or for this client)."""


@dataclass(slots=True)
class Answer:
    """One answer: its id, owner, client address, state and task."""

    id: str
    owner: str = ""
    client: str = ""
    #: ``running``, then ``done``, ``stopped`` or ``failed``.
    state: str = "running"
    stop_requested: bool = False
    #: Why it was stopped: ``requested`` or ``no-readers``.
    stop_cause: str = "requested"
    task: asyncio.Task[None] | None = None
    #: ``clock`` time since which no stream reads it (``None``: read now).
    unread_since: float | None = None
    #: ``clock`` time of the last ``reader`` event from another node (``None``: none yet).
    read_elsewhere_at: float | None = None

    @property
    def topic(self) -> str:
        return f"chat/{self.id}"


@dataclass(slots=True)
class _Settling:
    """The lock of one answer being settled, and how many requests wait on it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class AnswerBook:
    """Starts, stops and remembers answers; publishes them into the hub."""

    def __init__(
        self,
        hub: Hub,
        responder: Responder,
        *,
        max_running: int = 256,
        max_running_per_client: int = 4,
        reader_grace: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_chars: int = 20_000,
        max_seconds: float = 600.0,
        keep_finished: int = 1000,
        stale_after: float = 180.0,
        wall_clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: secrets.token_hex(8),
        scan_batch: int = 32,
        max_scan_events: int | None = None,
        max_scan_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.hub = hub
        self.responder = responder
        self.max_running = max_running
        self.max_running_per_client = max_running_per_client
        self.reader_grace = reader_grace
        self._clock = clock
        self.max_chars = max_chars
        self.max_seconds = max_seconds
        self.keep_finished = keep_finished
        self.stale_after = stale_after
        self._wall_clock = wall_clock
        self._new_id = new_id
        self.started_at = wall_clock()
        self.running: dict[str, Answer] = {}
        #: answer id -> its lifecycle, once it ended (or was read from the store).
        self.finished: OrderedDict[str, RunInfo] = OrderedDict()
        self.scan_batch = scan_batch
        #: An answer is at most ``max_chars`` tokens, a few thinking steps and two more events.
        self.max_scan_events = max_scan_events or max_chars + 1000
        self.max_scan_bytes = max_scan_bytes
        #: answer id -> its settle lock, only while a request uses it.
        self._settling: dict[str, _Settling] = {}
        #: Answers whose topic was over the scan bounds (not scanned again).
        self._unchecked: OrderedDict[str, None] = OrderedDict()
        #: Answers running on another node (as far as this one heard), oldest first.
        self.remote: OrderedDict[str, None] = OrderedDict()
        #: answer id -> ``clock`` time this node last said it has a reader of it.
        self._announced: dict[str, float] = {}
        self._announcing: set[asyncio.Task[None]] = set()

    # -- life cycle ----------------------------------------------------------

    async def start(
        self, messages: Sequence[ChatMessage], *, owner: str = "", client: str = ""
    ) -> tuple[Answer, str]:
        """Begin answering ``messages`` for ``owner`` (a session hash) at ``client`` (an address).

        Returns the answer and a cursor before its events.  Raises
        :class:`TooManyAnswersError` when ``max_running`` answers run, or
        ``max_running_per_client`` of this owner or of this address.
        """
        if len(self.running) >= self.max_running:
            raise TooManyAnswersError(f"{self.max_running} answers are already being written")
        limit = self.max_running_per_client
        mine = sum(1 for a in self.running.values() if owner and a.owner == owner)
        here = sum(1 for a in self.running.values() if client and a.client == client)
        if mine >= limit or here >= limit:
            raise TooManyAnswersError(f"{limit} of your answers are already being written")
        answer = Answer(self._new_id(), owner, client, unread_since=self._clock())
        cursor = self.hub.format_cursor(await self.hub.head())
        self.running[answer.id] = answer
        answer.task = asyncio.create_task(self._run(answer, list(messages)))
        return answer, cursor

    def stop(self, answer_id: str, cause: str = "requested") -> str | None:
        """Stop an answer running here; return its state (``None``: not known here)."""
        answer = self.running.get(answer_id)
        if answer is None:
            info = self.finished.get(answer_id)
            return info.state if info is not None else None
        if answer.task is not None and not answer.stop_requested:
            answer.stop_requested = True
            answer.stop_cause = cause
            answer.task.cancel()
        return "stopping"

    async def request_stop(self, answer_id: str) -> str:
        """Stop an answer wherever it runs: here at once, else through a ``stop`` event."""
        state = self.stop(answer_id)
        if state is not None:
            return state
        payload = json.dumps({"cause": "requested"})
        await self.hub.publish(f"chat/{answer_id}", payload, STOP_EVENT, private=True)
        return "stopping"

    def observe(self, event: StoredEvent, deliveries: int) -> None:
        """A hub observer of every answer's control and lifecycle events, on every node.

        ``stop`` stops an answer running here; ``reader`` marks one as read on
        another node; ``connected`` of an answer not running here notes it as
        running elsewhere, and its terminal event forgets it.
        """
        answer_id = answer_of(event.topic)
        if answer_id is None:
            return
        answer = self.running.get(answer_id)
        if event.event == STOP_EVENT:
            self.stop(answer_id)
        elif event.event == READER_EVENT:
            if answer is not None:
                answer.read_elsewhere_at = self._clock()
        elif event.event == "connected" and answer is None:
            self._note_remote(answer_id)
        elif event.event in TERMINAL_EVENTS:
            self.remote.pop(answer_id, None)
            self._announced.pop(answer_id, None)

    def _note_remote(self, answer_id: str) -> None:
        self.remote[answer_id] = None
        while len(self.remote) > self.max_running * 4:
            self._announced.pop(self.remote.popitem(last=False)[0], None)

    def state(self, answer_id: str) -> str | None:
        """The state of an answer known to this process (``None``: not known here)."""
        answer = self.running.get(answer_id)
        if answer is not None:
            return answer.state
        info = self.finished.get(answer_id)
        return info.state if info is not None else None

    async def info(self, answer_id: str) -> RunInfo | None:
        """The answer's lifecycle from the store (``None``: no such answer).

        An answer running here is answered from memory; any other is read
        (and settled, see :meth:`settle`) from its topic, so every node and a
        restarted hub give the same answer.
        """
        return await self._settled(answer_id)

    async def run(self) -> None:
        """Call :meth:`tick` every second (or half the grace, if shorter), until cancelled."""
        interval = max(0.05, min(1.0, self.reader_grace / 2))
        while True:
            await asyncio.sleep(interval)
            self.tick(self._clock())

    def tick(self, now: float) -> list[str]:
        """Stop the answers nobody has read for ``reader_grace`` seconds; return their ids.

        Read means: a stream of its topic on this node, or a ``reader`` event
        from another node within the grace.  For the answers running on
        other nodes that have a reader here, this node publishes such an
        event every third of the grace.
        """
        self._announce_readers(now)
        stopped: list[str] = []
        grace = self.reader_grace
        for answer in list(self.running.values()):
            elsewhere = answer.read_elsewhere_at
            if self.hub.subscriber_count(answer.topic) or (
                elsewhere is not None and now - elsewhere < grace
            ):
                answer.unread_since = None
            elif answer.unread_since is None:
                answer.unread_since = now
            elif now - answer.unread_since >= self.reader_grace and not answer.stop_requested:
                logger.info(
                    "chat answer %s: no reader for %gs, stopped",
                    answer.id,
                    now - answer.unread_since,
                )
                self.stop(answer.id, cause="no-readers")
                stopped.append(answer.id)
        return stopped

    def _announce_readers(self, now: float) -> None:
        """Tell the nodes running answers read here that they have a reader."""
        for answer_id in list(self.remote):
            if answer_id in self.running or not self.hub.subscriber_count(f"chat/{answer_id}"):
                continue
            if now - self._announced.get(answer_id, float("-inf")) < self.reader_grace / 3:
                continue
            self._announced[answer_id] = now
            task = asyncio.create_task(self._announce(answer_id))
            self._announcing.add(task)
            task.add_done_callback(self._announcing.discard)

    async def _announce(self, answer_id: str) -> None:
        try:
            await self.hub.publish(f"chat/{answer_id}", "{}", READER_EVENT, private=True)
        except HubError as exc:
            logger.warning("chat answer %s: reader not announced: %s", answer_id, exc)

    async def aclose(self) -> None:
        """Cancel every running answer (the hub is going away) and close the responder."""
        tasks = [a.task for a in self.running.values() if a.task is not None]
        tasks += self._announcing
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.responder.aclose()

    # -- writing an answer ---------------------------------------------------

    async def _run(self, answer: Answer, messages: list[ChatMessage]) -> None:
        writer = AnswerWriter(self.hub, answer.topic, self.max_chars, self.max_seconds)
        try:
            answer.state = await writer.write(
                self.responder, messages, answer_id=answer.id, owner=answer.owner
            )
        except asyncio.CancelledError:
            if not answer.stop_requested:
                answer.state = "failed"
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            answer.state = "stopped"
            await writer.stopped(answer.stop_cause)
        except Exception as exc:
            answer.state = "failed"
            await writer.failed(exc)
        finally:
            self.running.pop(answer.id, None)
            self._remember(answer.id, RunInfo(answer.state, answer.owner))

    # -- answers left behind by a previous process ---------------------------

    async def settle(self, answer_id: str) -> bool:
        """Make sure the answer's topic ends; return ``False`` if it has no history at all.

        An answer not running here whose last event is not terminal, and that
        was last written before this process started (or long ago), gets an
        ``error`` event saying it was interrupted.

        Bounded: an answer known here (running, finished or already settled)
        reads nothing; otherwise its topic is scanned in batches of
        ``scan_batch`` events, at most ``max_scan_events`` events and
        ``max_scan_bytes`` bytes of data (plus one batch).  A topic longer than
        that was not written by an answer (it is at most ``max_chars`` tokens):
        it is logged, left as it is and not scanned again.  Answers are settled
        one at a time *per answer*, never behind one another.
        """
        return await self._settled(answer_id) is not None

    async def _settled(self, answer_id: str) -> RunInfo | None:
        """:meth:`settle`, returning the answer's lifecycle (``None``: no history)."""
        known = self._known(answer_id)
        if known is not None:
            return known
        settling = self._settling.get(answer_id)
        if settling is None:
            settling = self._settling[answer_id] = _Settling()
        settling.users += 1
        try:
            async with settling.lock:
                return self._known(answer_id) or await self._settle(answer_id)
        finally:
            settling.users -= 1
            if not settling.users:
                del self._settling[answer_id]

    def _known(self, answer_id: str) -> RunInfo | None:
        answer = self.running.get(answer_id)
        if answer is not None:
            return RunInfo(answer.state, answer.owner)
        if answer_id in self._unchecked:
            return RunInfo("failed", "")  # not an answer: nobody owns it
        return self.finished.get(answer_id)

    async def _settle(self, answer_id: str) -> RunInfo | None:
        topic = f"chat/{answer_id}"
        found = await scan(
            self.hub,
            topic,
            batch=self.scan_batch,
            max_events=self.max_scan_events,
            max_bytes=self.max_scan_bytes,
        )
        first, last = found.first, found.last
        if not found.complete:
            logger.warning(
                "chat answer %s: history over %d events or %d bytes, not an answer; left as is",
                answer_id,
                self.max_scan_events,
                self.max_scan_bytes,
            )
            self._unchecked[answer_id] = None
            while len(self._unchecked) > self.keep_finished:
                self._unchecked.popitem(last=False)
            return RunInfo("failed", "")
        if first is None or last is None:
            return None
        owner = owner_of(first)
        if last.event in TERMINAL_EVENTS:
            info = RunInfo(state_of(last), owner)
            self._remember(answer_id, info)
            return info
        now = self._wall_clock()
        if last.time < self.started_at or now - last.time > self.stale_after:
            interrupted = {"message": INTERRUPTED}
            data = json.dumps(interrupted, ensure_ascii=False)
            await self.hub.publish(topic, data, "error", private=True)
            info = RunInfo("failed", owner)
            self._remember(answer_id, info)
            return info
        self._note_remote(answer_id)
        return RunInfo("running", owner)  # running on another node: read again next time

    def _remember(self, answer_id: str, info: RunInfo) -> None:
        self.finished[answer_id] = info
        while len(self.finished) > self.keep_finished:
            self.finished.popitem(last=False)
