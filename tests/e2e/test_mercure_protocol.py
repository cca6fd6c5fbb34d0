"""The Mercure protocol at ``/.well-known/mercure``, over HTTP against ``ssehub serve``.

Issue 13.  What Mercure's own conformance suite checks (ported in
``tests/browser/test_mercure_conformance.py``) and what it does not: both
dialects' selectors, alternate topics, private updates to authorised
subscribers only (header and ``mercureAuthorization`` cookie), publisher ids as
``Last-Event-ID`` cursors, ``earliest`` and ``Mercure-Last-Event-ID``, the
400 / 401 / 403 answers, the reserved namespace, subscription events and the
subscriptions API, the protected-resource metadata, and two nodes on one Redis
acting as one Mercure hub.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.processes import HubProcess, RedisProcess, start_hub
from tests.support.sse import StreamReader, open_stream
from tests.support.tokens import SECRET, mint

HUB = "/.well-known/mercure"
PUBLISHER = mint(publish=["*"])
LEGACY_PUBLISHER = mint(publish=["*"], legacy=True, ttl=None)
ARGS = ["--jwt-key", SECRET, "--heartbeat", "1", "--no-demos", "--mercure-subscriptions"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    log_dir = tmp_path_factory.mktemp("mercure")
    with start_hub(["--store", "memory", *ARGS], log_dir=log_dir) as node:
        yield node


def publish(
    node: HubProcess, *fields: tuple[str, str], token: str | None = PUBLISHER
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        node.url + HUB,
        content=urlencode(fields).encode(),
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )


def published(node: HubProcess, *fields: tuple[str, str], token: str = PUBLISHER) -> str:
    answer = publish(node, *fields, token=token)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def subscribe_url(node: HubProcess, *params: tuple[str, str]) -> str:
    return f"{node.url}{HUB}?{urlencode(params)}"


def datas(reader: StreamReader, until: str) -> list[str]:
    reader.read_until(f"data: {until}\n".encode())
    return [e.data for e in reader.events if e.event == "message"]


def unique() -> str:
    return secrets.token_hex(8)


def test_publish_answers_200_text_plain_with_the_publisher_id_or_a_hub_id(hub: HubProcess) -> None:
    assert published(hub, ("topic", "t"), ("data", "x"), ("id", "my-id-1")) == "my-id-1"
    generated = published(hub, ("topic", "t"), ("data", "x"))
    assert generated.startswith("urn:ssehub:")


def test_type_retry_and_multi_line_data_reach_the_wire(hub: HubProcess) -> None:
    topic = f"fields-{unique()}"
    with open_stream(subscribe_url(hub, ("match", topic))) as reader:
        reader.read_until(b"retry: ")
        fields = [("topic", topic), ("data", "a\r\nb\nc"), ("type", "t"), ("retry", "1500")]
        update_id = published(hub, *fields, ("id", f"{topic}-1"))
        published(hub, ("topic", topic), ("data", "end"))
        reader.read_until(b"data: end\n")
    first = reader.events[0]
    assert (first.event, first.data, first.id) == ("t", "a\nb\nc", update_id)
    assert reader.parser.retry == 1500


N = "https://example.net"
SELECTOR_CASES = [
    # (name, update topics, selector params, received)
    ("raw string", ["R"], [("match", "R")], True),
    ("multiple topics", ["other-R", "R"], [("match", "R")], True),
    ("multiple topic selectors", ["R"], [("match", "foo"), ("match", "R")], True),
    ("URL pattern", [f"{N}/foo/R"], [("match_urlpattern", f"{N}/foo/:x")], True),
    ("exact match is not a pattern", [f"{N}/foo/R"], [("match", f"{N}/foo/:x")], False),
    ("0.x URI template", [f"{N}/foo/R"], [("topic", N + "/foo/{x}")], True),
    ("0.x reserved template", [f"{N}/foo/R/deep"], [("topic", N + "/{+rest}")], True),
    ("0.x star", ["anything-R"], [("topic", "*")], True),
    ("nonmatching raw string", ["will-not-match}"], [("match", "another-name")], False),
    ("nonmatching URL pattern", [f"{N}/foo/R"], [("match_urlpattern", f"{N}/bar/:v")], False),
    ("nonmatching URI template", [f"{N}/foo/R/x"], [("topic", N + "/foo/{x}")], False),
]  # fmt: skip


def test_selectors_of_both_dialects_select_updates_by_any_of_their_topics(
    hub: HubProcess,
) -> None:
    """The conformance suite's data set (current and v0.24.2) plus templates and alternates."""
    tag = unique()
    sentinel = f"sentinel-{tag}"
    with ExitStack() as stack:
        readers: dict[str, StreamReader] = {}
        for name, _topics, params, _received in SELECTOR_CASES:
            params = [(k, v.replace("R", tag)) for k, v in params]
            url = subscribe_url(hub, *params, ("match", sentinel))
            readers[name] = stack.enter_context(open_stream(url))
            readers[name].read_until(b"retry: ")
        for name, topics, _params, _received in SELECTOR_CASES:
            fields = [("topic", t.replace("R", tag)) for t in topics]
            published(hub, *fields, ("data", name))
        published(hub, ("topic", sentinel), ("data", "end"))
        for name, _topics, _params, received in SELECTOR_CASES:
            got = datas(readers[name], "end")
            assert (name in got) is received, (name, got)
            assert got[-1] == "end"


def test_private_updates_reach_only_subscribers_whose_token_grants_one_of_their_topics(
    hub: HubProcess,
) -> None:
    tag = unique()
    topic, alternate = f"https://example.com/books/{tag}", f"https://example.com/alt/{tag}"
    reader_token = mint(subscribe=["https://example.com/alt/*"])
    legacy_token = mint(subscribe=["https://example.com/books/{id}"], legacy=True)
    stranger = mint(subscribe=["https://example.com/other/*"])
    url = subscribe_url(hub, ("match", topic))
    with ExitStack() as stack:
        streams = {
            "header": open_stream(url, headers={"Authorization": f"Bearer {reader_token}"}),
            "cookie": open_stream(url, headers={"Cookie": f"mercureAuthorization={legacy_token}"}),
            "stranger": open_stream(url, headers={"Authorization": f"Bearer {stranger}"}),
            "anonymous": open_stream(url),
        }
        readers = {k: stack.enter_context(v) for k, v in streams.items()}
        for reader in readers.values():
            reader.read_until(b"retry: ")
        published(hub, ("topic", topic), ("topic", alternate), ("data", "secret"), ("private", ""))
        published(hub, ("topic", topic), ("data", "public"))
        for name, reader in readers.items():
            expected = ["secret", "public"] if name in ("header", "cookie") else ["public"]
            assert datas(reader, "public") == expected, name


def test_a_publisher_id_is_a_cursor_and_mercure_last_event_id_names_where_replay_starts(
    hub: HubProcess,
) -> None:
    topic = f"resume-{unique()}"
    first = published(hub, ("topic", topic), ("data", "one"), ("id", f"{topic}-1"))
    published(hub, ("topic", "elsewhere"), ("data", "noise"))
    second = published(hub, ("topic", topic), ("data", "two"))
    published(hub, ("topic", topic), ("data", "three"), ("id", f"{topic}-3"))
    cases = {
        "header publisher id": ({"Last-Event-ID": first}, (), ["two", "three"], first),
        "query publisher id": ({}, (("last_event_id", first),), ["two", "three"], first),
        "0.x query": ({}, (("lastEventID", first),), ["two", "three"], first),
        "hub id": ({"Last-Event-ID": second}, (), ["three"], second),
        "earliest": ({}, (("last_event_id", "earliest"),), ["one", "two", "three"], "earliest"),
    }
    for name, (headers, query, expected, echoed) in cases.items():
        url = subscribe_url(hub, ("match", topic), *query)
        with open_stream(url, headers=headers) as reader:
            assert datas(reader, "three") == expected, name
            assert reader.response.headers["mercure-last-event-id"] == echoed, name
            assert reader.response.headers["last-event-id"] == echoed, name
            ids = [e.id for e in reader.events if e.event == "message"]
            assert ids[-1] == f"{topic}-3", name


def test_an_unknown_last_event_id_starts_live_and_says_earliest(hub: HubProcess) -> None:
    topic = f"unknown-{unique()}"
    published(hub, ("topic", topic), ("data", "old"))
    url = subscribe_url(hub, ("match", topic))
    with open_stream(url, headers={"Last-Event-ID": "never-published"}) as reader:
        reader.read_until(b"retry: ")
        assert reader.response.headers["mercure-last-event-id"] == "earliest"
        published(hub, ("topic", topic), ("data", "new"))
        assert datas(reader, "new") == ["new"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ([("data", "no topic")], "missing_topic"),
        ([("topic", "*")], "invalid_topic"),
        ([("topic", "/.well-known/mercure/subscriptions/x/y")], "reserved_topic"),
        ([("topic", "ok"), ("topic", "https://h.example/.well-known/%6Dercure/x")],
         "reserved_topic"),
        ([("topic", "/a/../.well-known/mercure")], "reserved_topic"),
        ([("topic", "t"), ("id", "#frag")], "invalid_id"),
        ([("topic", "t"), ("id", "earliest")], "invalid_id"),
        ([("topic", "t"), ("id", "a\x00b")], "invalid_mercure_request"),
        ([("topic", "t"), ("type", "mercure")], "invalid_type"),
        ([("topic", "t"), ("type", "a\u200bb")], "invalid_mercure_request"),
        ([("topic", "t"), ("retry", "+5")], "invalid_retry"),
        ([("topic", "t"), ("retry", "١٢")], "invalid_retry"),
    ],
)  # fmt: skip
def test_malformed_publishes_are_400_whatever_the_token(
    hub: HubProcess, fields: list[tuple[str, str]], code: str
) -> None:
    answer = publish(hub, *fields)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == code


@pytest.mark.parametrize(
    "query",
    [
        "matchy=1",
        "match_regex=.*",
        "MATCH=x",
        "",
        "other=1",
        "match_urlpattern=(a",
        "match=a%01b",
        "topic=%7Bunclosed",
    ],
)
def test_bad_subscriptions_are_400(hub: HubProcess, query: str) -> None:
    answer = httpx.get(f"{hub.url}{HUB}?{query}", timeout=10)
    assert answer.status_code == 400, answer.text
    assert "error" in answer.json()


def test_publishing_needs_a_token_granting_every_topic(hub: HubProcess) -> None:
    missing = publish(hub, ("topic", "t"), ("data", "x"), token=None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = publish(hub, ("topic", "t"), token="not.a.token")
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    narrow = mint(publish=["https://example.com/books/:id"])
    ok = publish(hub, ("topic", "https://example.com/books/1"), token=narrow)
    assert ok.status_code == 200, ok.text
    refused = publish(
        hub, ("topic", "https://example.com/books/1"), ("topic", "https://x.example/"), token=narrow
    )
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


def test_a_bad_subscriber_token_is_401_never_ignored(hub: HubProcess) -> None:
    stranger_key = "a-key-this-hub-does-not-know-0123456789"
    for headers in (
        {"Authorization": "Bearer garbage"},
        {"Cookie": "mercureAuthorization=garbage"},
        {"Authorization": f"Bearer {mint(subscribe=['*'], key=stranger_key)}"},
    ):
        answer = httpx.get(subscribe_url(hub, ("match", "t")), headers=headers, timeout=10)
        assert answer.status_code == 401, headers
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_subscription_events_and_the_api_show_active_subscriptions(hub: HubProcess) -> None:
    watcher = mint(
        subscribe=["/.well-known/mercure/subscriptions", "/.well-known/mercure/subscriptions/*"]
    )
    auth = {"Authorization": f"Bearer {watcher}"}
    topic = f"https://example.com/watched/{unique()}"
    events_url = subscribe_url(hub, ("match_urlpattern", "/.well-known/mercure/subscriptions/*"))
    with open_stream(events_url, headers=auth) as events:
        events.read_until(b"retry: ")
        with open_stream(subscribe_url(hub, ("match", topic))) as subscriber:
            subscriber.read_until(b"retry: ")
            events.read_until(b'"active": true')
            listing = httpx.get(f"{hub.url}{HUB}/subscriptions", headers=auth, timeout=10)
            assert listing.status_code == 200
            assert 'rel="mercure"' in listing.headers["link"]
            body = listing.json()
            assert body["type"] == "subscriptions"
            mine = [s for s in body["subscriptions"] if s["match"] == topic]
            assert len(mine) == 1
            assert mine[0]["active"] is True
            one = httpx.get(hub.url + mine[0]["id"], headers=auth, timeout=10)
            assert one.status_code == 200
            assert one.json() == mine[0]
            anonymous = httpx.get(f"{hub.url}{HUB}/subscriptions", timeout=10)
            assert anonymous.status_code == 401
            other = mint(subscribe=["https://example.com/*"])
            refused = httpx.get(
                f"{hub.url}{HUB}/subscriptions",
                headers={"Authorization": f"Bearer {other}"},
                timeout=10,
            )
            assert refused.status_code == 403
        events.read_until(b'"active": false')
    docs = [json.loads(e.data) for e in events.events if e.event == "mercure"]
    docs = [d for d in docs if d["match"] == topic]
    assert [d["active"] for d in docs] == [True, False]
    assert all(d["type"] == "subscription" and d["match_type"] == "exact" for d in docs)
    gone = httpx.get(hub.url + mine[0]["id"], headers=auth, timeout=10)
    assert gone.status_code == 404


def test_subscription_events_are_private(hub: HubProcess) -> None:
    url = subscribe_url(hub, ("match_urlpattern", "/.well-known/mercure/subscriptions/*"))
    with open_stream(url) as anonymous:
        anonymous.read_until(b"retry: ")
        with open_stream(subscribe_url(hub, ("match", "x"))) as other:
            other.read_until(b"retry: ")
        published(hub, ("topic", "x"), ("data", "after"))
        with open_stream(subscribe_url(hub, ("match", "x"), ("last_event_id", "earliest"))):
            pass
        assert [e.event for e in anonymous.events] == []


def test_protected_resource_metadata_names_the_hub(hub: HubProcess) -> None:
    answer = httpx.get(f"{hub.url}/.well-known/oauth-protected-resource{HUB}", timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert body["resource"] == f"{hub.url}{HUB}"
    assert body["authorization_details_types_supported"] == [
        "https://mercure.rocks/authorization-detail"
    ]
    assert body["mercure_subscriptions"] is True


def test_the_adapter_topic_is_not_reachable_through_the_topic_api(hub: HubProcess) -> None:
    headers = {"Authorization": f"Bearer {PUBLISHER}"}
    answer = httpx.post(
        f"{hub.url}/topics/ssehub/mercure", json={"data": "{}"}, headers=headers, timeout=10
    )
    assert answer.status_code == 400
    assert httpx.get(f"{hub.url}/topics/ssehub/mercure", timeout=10).status_code == 400


def test_a_stream_ends_by_its_tokens_exp_with_a_retry(hub: HubProcess) -> None:
    token = mint(subscribe=["*"], ttl=3)
    url = subscribe_url(hub, ("match", "expiring"))
    with open_stream(url, headers={"Authorization": f"Bearer {token}"}) as reader:
        raw = reader.read_to_end(timeout=10)
    assert raw.count(b"retry: ") == 2  # the opening one, and the one sent at exp


def test_cors_with_credentials_only_for_listed_origins(tmp_path: Path) -> None:
    args = ["--store", "memory", *ARGS, "--cors-origin", "https://app.example"]
    with start_hub(args, log_dir=tmp_path) as node:
        url = subscribe_url(node, ("match", "t"))
        with open_stream(url, headers={"Origin": "https://app.example"}) as listed:
            headers = listed.response.headers
            assert headers["access-control-allow-origin"] == "https://app.example"
            assert headers["access-control-allow-credentials"] == "true"
            assert "mercure-last-event-id" in headers["access-control-expose-headers"].lower()
        with open_stream(url, headers={"Origin": "https://evil.example"}) as other:
            assert "access-control-allow-origin" not in other.response.headers


def test_a_full_hub_tells_a_mercure_eventsource_to_come_back_later(tmp_path: Path) -> None:
    args = ["--store", "memory", "--no-demos", "--max-connections", "1"]
    with start_hub(args, log_dir=tmp_path) as node:
        url = subscribe_url(node, ("match", "a"))
        with open_stream(url) as first:
            first.read_until(b"retry: ")
            browser = httpx.get(url, headers={"Accept": "text/event-stream"}, timeout=10)
            program = httpx.get(url, headers={"Accept": "application/json"}, timeout=10)
    assert browser.status_code == 200
    assert browser.text.startswith(": 503 too_many_connections")
    assert "retry: " in browser.text
    assert program.status_code == 503


@pytest.mark.redis
def test_two_nodes_on_one_redis_are_one_mercure_hub(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    args = ["--store", redis_server.url, *ARGS]
    with start_hub(args, log_dir=tmp_path) as a, start_hub(args, log_dir=tmp_path) as b:
        topic = "https://example.com/shared"
        with open_stream(subscribe_url(b, ("match", topic))) as live:
            live.read_until(b"retry: ")
            published(a, ("topic", topic), ("data", "one"), ("id", "shared-1"))
            published(a, ("topic", topic), ("data", "two"), token=LEGACY_PUBLISHER)
            assert datas(live, "two") == ["one", "two"]
        # A publisher id minted on node a is a cursor on node b.
        url = subscribe_url(b, ("match", topic))
        with open_stream(url, headers={"Last-Event-ID": "shared-1"}) as resumed:
            assert datas(resumed, "two") == ["two"]
            assert resumed.response.headers["mercure-last-event-id"] == "shared-1"
