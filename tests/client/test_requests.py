"""What ``EventSource`` sends: headers, bodies, methods and the last event ID."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ssehub.client import EventSource
from tests.support.client import Recorder, take
from tests.support.fault_server import Action, FaultServer, Received, event, head


def one_event(n: int, request: Received) -> Sequence[Action]:
    return [head(), event(f"reply {n}", id=str(n + 1))]


def test_sends_browser_like_headers_and_custom_ones() -> None:
    headers = {"Authorization": "Bearer s3cret", "accept": "text/event-stream, */*"}
    with FaultServer(one_event) as server, EventSource(server.url, headers=headers) as source:
        take(source, 1)
    sent = server.requests[0]
    assert sent.method == "GET"
    assert sent.headers["authorization"] == "Bearer s3cret"
    assert sent.headers["accept"] == "text/event-stream, */*"
    assert sent.headers["cache-control"] == "no-store"
    assert "last-event-id" not in sent.headers


def test_post_with_json_body_streams_and_does_not_reconnect_by_default() -> None:
    body = {"model": "demo", "messages": [{"role": "user", "content": "你好"}]}
    with (
        FaultServer(one_event) as server,
        EventSource(server.url + "/v1/chat", method="POST", json=body) as source,
    ):
        assert [e.data for e in source] == ["reply 0"]
    assert len(server.requests) == 1
    sent = server.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/chat")
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.body) == body


def test_post_with_content_and_reconnect_resends_the_body() -> None:
    recorder = Recorder()
    with (
        FaultServer(one_event) as server,
        EventSource(
            server.url,
            method="POST",
            content="raw body",
            headers={"Content-Type": "text/plain"},
            reconnect=True,
            **recorder.options(),
        ) as source,
    ):
        take(source, 2)
    assert [r.body for r in server.requests] == [b"raw body", b"raw body"]
    assert server.requests[1].headers["last-event-id"] == "1"


def test_last_event_id_option_is_sent_on_the_first_request() -> None:
    with (
        FaultServer(one_event) as server,
        EventSource(server.url, last_event_id="41") as source,
    ):
        assert source.last_event_id == "41"
        take(source, 1)
    assert server.requests[0].headers["last-event-id"] == "41"


def test_last_event_id_can_travel_as_a_query_parameter() -> None:
    recorder = Recorder()
    with (
        FaultServer(one_event) as server,
        EventSource(
            server.url + "/events",
            params={"topic": "a"},
            last_event_id="7",
            last_event_id_query=True,
            **recorder.options(),
        ) as source,
    ):
        take(source, 2)
    first, second = server.requests
    assert first.query == {"topic": ["a"], "last_event_id": ["7"]}
    assert second.query == {"topic": ["a"], "last_event_id": ["1"]}
    assert "last-event-id" not in first.headers
    assert "last-event-id" not in second.headers


def test_last_event_id_query_parameter_name_is_configurable() -> None:
    with (
        FaultServer(one_event) as server,
        EventSource(server.url, last_event_id="x", last_event_id_query="lastEventId") as source,
    ):
        take(source, 1)
    assert server.requests[0].query == {"lastEventId": ["x"]}


def test_non_ascii_last_event_id_is_sent_as_utf8() -> None:
    with (
        FaultServer(one_event) as server,
        EventSource(server.url, last_event_id="事件-1") as source,
    ):
        take(source, 1)
    assert server.requests[0].headers["last-event-id"] == "事件-1"
