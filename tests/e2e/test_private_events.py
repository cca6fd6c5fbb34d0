"""Private events reach only streams whose token grants ``subscribe`` on their topic.

Issue 11 (access control).  A mix of public and private events is published to real
``ssehub serve`` processes — one node on memory and on SQLite, two nodes on one Redis
(published on one node, read on the other) — and every subscriber's stream is checked
event by event: live, multi-topic, after a reset (a cursor the hub never issued) and on
replay (the grant re-checked with the token presented at reconnection).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import jwt
import pytest

from ssehub.hub import RESET_EVENT
from tests.support.processes import HubProcess, start_hub
from tests.support.sse import StreamReader, open_stream
from tests.support.tokens import SECRET, mint

PUBLISHER = mint(publish=["*"])
IDENTITIES: dict[str, str | None] = {
    "anonymous": None,
    "reader": mint(subscribe=["secret/*"]),  # urlpattern
    "legacy reader": mint(subscribe=["secret/{id}"], legacy=True),  # URI template
    "stranger": mint(subscribe=["other/*"]),
}
GRANTED = {"anonymous": (), "reader": ("secret/a",), "legacy reader": ("secret/a",), "stranger": ()}
#: (topic, data, private, how): how = "json" ("private": true) or "query" (?private=1)
MIX = [
    ("public", "p1", False, "json"),
    ("secret/a", "s1", True, "json"),
    ("secret/a", "p2", False, "json"),
    ("public", "x1", True, "json"),  # private on a topic no reader is granted
    ("secret/a", "s2", True, "query"),
    ("public", "p3", False, "query"),
]
STREAMS = {
    "one topic": ("/topics/secret/a", ("secret/a",)),
    "multi-topic": ("/events?topic=public&topic=secret/a", ("public", "secret/a")),
}


@pytest.fixture(params=["memory", "sqlite", "redis"])
def nodes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[HubProcess, HubProcess]]:
    """(publishing node, subscribing node): the same process unless the store is Redis."""
    kind = request.param
    args = ["--jwt-key", SECRET, "--heartbeat", "1"]
    with ExitStack() as stack:
        if kind == "redis":
            url = request.getfixturevalue("redis_server").url
            a = stack.enter_context(start_hub([*args, "--store", url], log_dir=tmp_path))
            b = stack.enter_context(start_hub([*args, "--store", url], log_dir=tmp_path))
            yield a, b
            return
        store = "memory" if kind == "memory" else f"sqlite:{tmp_path / 'hub.db'}"
        node = stack.enter_context(start_hub([*args, "--store", store], log_dir=tmp_path))
        yield node, node


def jwt_payload(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _publish(node: HubProcess, topic: str, data: str, private: bool, how: str) -> str:
    headers = {"Authorization": f"Bearer {PUBLISHER}"}
    if how == "query":
        url = f"{node.url}/topics/{topic}" + ("?private=1" if private else "")
        answer = httpx.post(url, content=data.encode(), headers=headers, timeout=10)
    else:
        body = {"data": data, "private": True} if private else {"data": data}
        answer = httpx.post(f"{node.url}/topics/{topic}", json=body, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _expected(identity: str, topics: tuple[str, ...], ids: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (data, ids[data])
        for topic, data, private, _ in [
            *MIX,
            ("public", "end", False, "json"),
            ("secret/a", "end2", False, "json"),
        ]
        if topic in topics and (not private or topic in GRANTED[identity])
    ]


def _received(reader: StreamReader, last: str) -> list[tuple[str, str]]:
    reader.read_until(f"data: {last}\n".encode())
    return [(e.data, e.id) for e in reader.events if e.event != RESET_EVENT]


@pytest.mark.redis
def test_private_events_reach_only_granted_streams_live_replayed_and_reset(
    nodes: tuple[HubProcess, HubProcess],
) -> None:
    publisher, subscriber = nodes
    health = httpx.get(f"{subscriber.url}/healthz", timeout=10).json()
    start_cursor = f"{health['epoch']}-{health['head']}"
    with ExitStack() as stack:
        live: dict[tuple[str, str, str], StreamReader] = {}
        for identity, token in IDENTITIES.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for shape, (path, _topics) in STREAMS.items():
                for entry, suffix in (("fresh", ""), ("reset", "last_event_id=never-issued")):
                    url = f"{subscriber.url}{path}"
                    if suffix:
                        url += ("&" if "?" in url else "?") + suffix
                    reader = stack.enter_context(open_stream(url, headers=headers))
                    reader.read_until(b"retry: ")
                    live[identity, shape, entry] = reader
        ids = {
            data: _publish(publisher, topic, data, private, how)
            for topic, data, private, how in MIX
        }
        ids["end"] = _publish(publisher, "public", "end", False, "json")
        ids["end2"] = _publish(publisher, "secret/a", "end2", False, "json")
        for (identity, shape, entry), reader in live.items():
            topics = STREAMS[shape][1]
            got = _received(reader, "end2")
            assert got == _expected(identity, topics, ids), (identity, shape, entry)
            if entry == "reset":
                assert reader.events[0].event == RESET_EVENT
    # Replay: every identity resumes from before the mix, on the subscribing node.
    for identity, token in IDENTITIES.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["Last-Event-ID"] = start_cursor
        for shape, (path, topics) in STREAMS.items():
            with open_stream(f"{subscriber.url}{path}", headers=headers) as reader:
                got = _received(reader, "end2")
            assert got == _expected(identity, topics, ids), (identity, shape, "replay")
    # The grant is the one presented now: the reader's token without the grant sees nothing private.
    narrowed = mint(subscribe=["secret/b"])
    headers = {"Authorization": f"Bearer {narrowed}", "Last-Event-ID": start_cursor}
    with open_stream(f"{subscriber.url}/topics/secret/a", headers=headers) as reader:
        got = _received(reader, "end2")
    assert got == _expected("stranger", ("secret/a",), ids)


def test_a_real_stream_ends_with_a_retry_by_its_token_exp(tmp_path: Path) -> None:
    """Issue 11: the stream ends by ``exp``, so a browser reconnects with a fresh cookie."""
    with start_hub(["--jwt-key", SECRET, "--store", "memory"], log_dir=tmp_path) as node:
        token = mint(subscribe=["*"], ttl=3)
        exp = int(jwt_payload(token)["exp"])
        with open_stream(
            f"{node.url}/topics/t", headers={"Authorization": f"Bearer {token}"}
        ) as reader:
            reader.read_to_end(timeout=10)
        assert time.time() <= exp + 0.5
        assert bytes(reader.raw).count(b"retry: ") == 2  # the opening one, then the jittered one
