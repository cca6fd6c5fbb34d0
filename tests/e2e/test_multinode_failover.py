"""A node killed mid-stream under load: its clients resume on another node, losing nothing.

Three ``ssehub serve`` processes share one private ``redis-server``.  Clients
stream from node A (one topic or several); publishers post continuously to all
three nodes; a witness client streams every topic from node B.  Node A is
killed with SIGKILL while events flow; its clients come back (after at least 80
more publishes, so they must resume from history) on node B with their
``Last-Event-ID``.  The proof is event by event: every client received
exactly the witness's events of its topics, once each, in ``seq`` order, and
every publish that was answered 201 reached the witness.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ssehub.hub import RESET_EVENT
from ssehub.protocol import Event, EventStreamParser
from tests.support.polling import poll_until
from tests.support.processes import (
    HubProcess,
    RedisProcess,
    start_hub,
)

pytestmark = pytest.mark.redis

TOPICS = ("t0", "t1", "t2", "t3")
SUBSCRIPTIONS = (("t0",), ("t1",), ("t0", "t1"), ("t2", "t0"), ("t1", "t2", "t3"), ("t3",))
END = "end"


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """:func:`poll_until` with this test's bound: three nodes under load on a shared machine."""
    poll_until(condition, what, timeout=60.0)


def seq_of(event_id: str) -> int:
    return int(event_id.rpartition("-")[2])


@dataclass(eq=False)
class Follower(threading.Thread):
    """A client of ``topics`` that streams from ``urls`` in turn, resuming with Last-Event-ID.

    Each event's data is ``"{topic}|{payload}"``; the follower is done once it
    has seen an ``end`` event on every one of its topics.
    """

    topics: tuple[str, ...]
    urls: list[str]
    stop: threading.Event
    #: Reconnections wait for this gate (a client that takes its time to come back).
    gate: threading.Event = field(default_factory=threading.Event)
    events: list[Event] = field(default_factory=list)
    connections: int = 0
    disconnections: int = 0
    cursor: str = ""
    error: BaseException | None = None

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, daemon=True)

    @property
    def path(self) -> str:
        if len(self.topics) == 1:
            return f"/topics/{self.topics[0]}"
        return "/events?" + "&".join(f"topic={t}" for t in self.topics)

    def finished(self) -> bool:
        ended = {e.data.partition("|")[0] for e in self.events if e.event == END}
        return ended >= set(self.topics)

    def run(self) -> None:
        node = 0
        try:
            while not (self.stop.is_set() or self.finished()):
                with suppress(httpx.HTTPError):
                    self._stream(self.urls[node])
                self.disconnections += 1
                node = min(node + 1, len(self.urls) - 1)  # fail over to the next node
                self.gate.wait(timeout=60)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _stream(self, base: str) -> None:
        headers = {"Last-Event-ID": self.cursor} if self.cursor else {}
        timeout = httpx.Timeout(10.0, read=10.0)
        with httpx.stream("GET", base + self.path, headers=headers, timeout=timeout) as response:
            response.raise_for_status()
            self.connections += 1
            parser = EventStreamParser(last_event_id=self.cursor)
            for chunk in response.iter_raw():
                self.events.extend(parser.feed(chunk))
                self.cursor = parser.last_event_id
                if self.stop.is_set() or self.finished():
                    return


@dataclass(eq=False)
class Publisher(threading.Thread):
    """Posts ``"{topic}|{name}-{n}"`` round the topics to ``url`` until stopped or refused."""

    name_: str
    url: str
    stop: threading.Event
    acked: list[tuple[str, str]] = field(default_factory=list)  # (id, data)
    unknown: int = 0

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, daemon=True)

    def run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            n = 0
            while not self.stop.is_set():
                topic = TOPICS[n % len(TOPICS)]
                data = f"{topic}|{self.name_}-{n}"
                try:
                    answer = client.post(f"{self.url}/topics/{topic}", json={"data": data})
                except httpx.HTTPError:
                    self.unknown += 1  # the node died: this one may or may not be stored
                    return
                assert answer.status_code == 201, answer.text
                self.acked.append((str(answer.json()["id"]), data))
                n += 1


@pytest.fixture
def nodes(redis_server: RedisProcess, tmp_path: Path) -> Iterator[list[HubProcess]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                start_hub(["--store", redis_server.url, "--heartbeat", "1"], log_dir=tmp_path)
            )
            for _ in range(3)
        ]


def test_clients_of_a_killed_node_resume_on_another_with_no_loss_and_no_duplicates(
    nodes: list[HubProcess],
) -> None:
    a, b, c = nodes
    stop_all, stop_publishing = threading.Event(), threading.Event()
    reconnect = threading.Event()
    followers = [Follower(topics, [a.url, b.url], stop_all, reconnect) for topics in SUBSCRIPTIONS]
    witness = Follower(TOPICS, [b.url, c.url], stop_all)
    witness.gate.set()
    publishers = [Publisher(f"p{i}", n.url, stop_publishing) for i, n in enumerate(nodes)]
    threads: list[threading.Thread] = [*followers, witness, *publishers]
    try:
        for follower in [*followers, witness]:
            follower.start()
        wait_for(lambda: all(f.cursor for f in [*followers, witness]), "every client to connect")
        for publisher in publishers:
            publisher.start()

        wait_for(lambda: all(len(f.events) >= 30 for f in followers), "events to flow")
        seen_before_kill = [len(f.events) for f in followers]
        a.proc.kill()  # SIGKILL: no drain, no goodbye
        a.proc.wait(timeout=10)
        wait_for(lambda: all(f.disconnections for f in followers), "the clients to notice")
        # The clients come back only after many more events: they resume from history.
        published = sum(len(p.acked) for p in publishers)
        wait_for(lambda: sum(len(p.acked) for p in publishers) >= published + 80, "publishes")
        reconnect.set()
        wait_for(
            lambda: all(
                f.connections >= 2 and len(f.events) >= seen + 30
                for f, seen in zip(followers, seen_before_kill, strict=True)
            ),
            "the clients of the dead node to resume on another and receive more",
        )

        stop_publishing.set()
        for publisher in publishers:
            publisher.join(timeout=30)
        for topic in TOPICS:
            answer = httpx.post(f"{c.url}/topics/{topic}?event={END}", content=f"{topic}|end")
            assert answer.status_code == 201, answer.text
        wait_for(lambda: all(f.finished() for f in [*followers, witness]), "every end event")
    finally:
        stop_publishing.set()
        stop_all.set()
        reconnect.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=15)

    assert [f.error for f in [*followers, witness]] == [None] * (len(followers) + 1)
    assert publishers[1].unknown == publishers[2].unknown == 0
    truth = [(e.id, e.data) for e in witness.events]
    seqs = [seq_of(event_id) for event_id, _ in truth]
    assert seqs == sorted(set(seqs)), "the witness got each event once, in seq order"
    acked = [pair for publisher in publishers for pair in publisher.acked]
    assert set(acked) <= set(truth), "every publish answered 201 was delivered"
    assert len(acked) >= 200
    for follower in followers:
        expected = [(i, d) for i, d in truth if d.partition("|")[0] in follower.topics]
        got = [(e.id, e.data) for e in follower.events]
        assert got == expected, f"client of {follower.topics} differs from the witness"
        assert follower.connections >= 2
        assert RESET_EVENT not in {e.event for e in follower.events}
    print(
        f"published {len(acked)} (+{publishers[0].unknown} unanswered on the killed node); "
        f"clients got {[len(f.events) for f in followers]} events"
    )
