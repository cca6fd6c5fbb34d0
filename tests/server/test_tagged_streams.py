"""``?tag=topic`` over HTTP: each event names its topic in a ``topic:`` line (issue 15).

The hub's rules (live and replay, grants, one encoding per event) are proven in
``tests/hub/test_hub.py``; here the query parameter reaches the hub through a
real ``ssehub serve`` on both stream routes, and garbage is answered ``400``
JSON before any stream opens.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.apps import app_client
from tests.support.processes import HubProcess
from tests.support.sse import open_stream


def publish(hub: HubProcess, topic: str, data: str) -> str:
    answer = httpx.post(f"{hub.url}/topics/{topic}", content=data, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_a_tagged_stream_names_each_events_topic_and_an_untagged_one_does_not(
    hub: HubProcess,
) -> None:
    cursor = publish(hub, "a", "before")
    old = publish(hub, "b", "replayed")
    headers = {"Last-Event-ID": cursor}
    with (
        open_stream(f"{hub.url}/events?topic=a&topic=b&tag=topic", headers=headers) as tagged,
        open_stream(f"{hub.url}/events?topic=a&topic=b", headers=headers) as plain,
        open_stream(f"{hub.url}/topics/a?tag=topic") as one,
    ):
        for reader in (tagged, plain):
            reader.read_until(old.encode())
        one.read_until(b"retry:")
        live = publish(hub, "a", "live")
        for reader in (tagged, plain, one):
            reader.read_until(b"data: live\n\n")
    assert f"topic: b\nid: {old}\ndata: replayed\n\n" in tagged.raw.decode()
    assert f"topic: a\nid: {live}\ndata: live\n\n" in tagged.raw.decode()
    assert f"topic: a\nid: {live}\ndata: live\n\n" in one.raw.decode()
    assert b"topic:" not in plain.raw
    # the field is ignored by a conforming parser: the same events either way
    assert tagged.events == plain.events


@pytest.mark.parametrize(
    "query", ["tag=", "tag=TOPIC", "tag=topics", "tag=topic&tag=id", "tag=" + "x" * 400]
)
@pytest.mark.parametrize("route", ["/topics/news?", "/events?topic=news&"])
async def test_a_tag_other_than_topic_is_a_400_json_error(route: str, query: str) -> None:
    async with app_client() as client:
        answer = await client.get(route + query, headers={"Accept": "text/event-stream"})
        assert (await client.get("/healthz")).json()["open_streams"] == 0
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_query"
