"""Late joiners over HTTP: ``?since=earliest`` / ``?rewind=…`` on the topic API (issue 14).

The stores' behaviour is proven on every store in ``tests/hub/test_rewind.py``;
here, the query parameters reach the hub through a real ``ssehub serve``, and
garbage is answered ``400`` JSON before any stream opens.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.apps import app_client
from tests.support.processes import HubProcess
from tests.support.sse import open_stream


def publish(hub: HubProcess, topic: str, data: str) -> str:
    answer = httpx.post(f"{hub.url}/topics/{topic}", json={"data": data}, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_late_joiners_get_retained_history_then_live_and_a_cursor_wins(hub: HubProcess) -> None:
    ids = [publish(hub, "news", f"n{i}") for i in range(4)]
    publish(hub, "sports", "s0")
    with open_stream(f"{hub.url}/events?topic=news&since=earliest") as reader:
        assert [e.data for e in reader.read_events(4)] == ["n0", "n1", "n2", "n3"]
        live = publish(hub, "news", "n4")
        assert reader.read_events(5)[-1].id == live
    with open_stream(f"{hub.url}/topics/news?rewind=2") as reader:
        assert [e.data for e in reader.read_events(2)] == ["n3", "n4"]
    with open_stream(f"{hub.url}/topics/news?rewind=1h") as reader:
        assert len(reader.read_events(5)) == 5
    with open_stream(
        f"{hub.url}/topics/news?since=earliest", headers={"Last-Event-ID": ids[2]}
    ) as reader:
        assert [e.data for e in reader.read_events(2)] == ["n3", "n4"]


@pytest.mark.parametrize(
    "query",
    [
        "since=latest",
        "since=",
        "rewind=0",
        "rewind=-3",
        "rewind=abc",
        "rewind=1e9",
        "rewind=30d",
        "since=earliest&rewind=5",
        "rewind=" + "9" * 400,
    ],
)
async def test_garbage_since_or_rewind_is_a_400_json_error(query: str) -> None:
    async with app_client() as client:
        answer = await client.get(f"/topics/news?{query}", headers={"Accept": "text/event-stream"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_rewind"
