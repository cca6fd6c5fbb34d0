"""The client against the real hub (``ssehub serve`` subprocesses); httpx-sse reads it too."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import httpx_sse

from ssehub.client import AsyncEventSource, EventSource, Opened
from ssehub.protocol import Event
from tests.support.processes import HubProcess, free_port, start_hub

DEADLINE = 30.0  # seconds; a bound for a failing test, never a measurement


def publish(hub_url: str, topic: str, data: str) -> str:
    response = httpx.post(f"{hub_url}/topics/{topic}", json={"data": data}, timeout=10)
    assert response.status_code == 201, response.text
    event_id: str = response.json()["id"]
    return event_id


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_client_reads_a_topic_across_a_hub_restart_exactly_once(tmp_path: Path) -> None:
    """The hub stops and comes back on the same port with its SQLite history.

    Events published while the client is away come from history; the ids the
    hub answered the publishes with prove nothing is lost or repeated.
    """
    port = free_port()
    args = ["--store", f"sqlite:{tmp_path / 'hub.db'}", "--heartbeat", "1"]
    hub_up = threading.Event()
    opens = threading.Semaphore(0)
    received: list[Event] = []
    source_box: list[EventSource] = []

    def sleep(delay: float) -> None:
        assert hub_up.wait(DEADLINE), "the hub did not come back"

    def consume(url: str) -> None:
        with EventSource(
            url,
            sleep=sleep,
            on_open=lambda opened: opens.release(),
            read_timeout=10,
        ) as source:
            source_box.append(source)
            for item in source:
                received.append(item)
                if len(received) == 9:
                    return

    published: list[str] = []
    with start_hub(args, port=port, log_dir=tmp_path) as hub:
        hub_up.set()
        thread = threading.Thread(target=consume, args=(f"{hub.url}/topics/t",), daemon=True)
        thread.start()
        assert opens.acquire(timeout=DEADLINE)
        published += [publish(hub.url, "t", f"before {n}") for n in range(3)]
        wait_for(lambda: len(received) == 3)
        hub_up.clear()
    with start_hub(args, port=port, log_dir=tmp_path) as hub:
        published += [publish(hub.url, "t", f"while away {n}") for n in range(3)]
        hub_up.set()
        assert opens.acquire(timeout=DEADLINE)
        published += [publish(hub.url, "t", f"after {n}") for n in range(3)]
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert [e.id for e in received] == published
    assert [e.data for e in received] == [
        *(f"before {n}" for n in range(3)),
        *(f"while away {n}" for n in range(3)),
        *(f"after {n}" for n in range(3)),
    ]
    assert len(set(published)) == 9


def test_client_resumes_from_a_last_event_id_given_at_start(hub: HubProcess) -> None:
    ids = [publish(hub.url, "news", f"n{n}") for n in range(4)]
    with EventSource(f"{hub.url}/topics/news", last_event_id=ids[1]) as source:
        got = [next(source), next(source)]
    assert [(e.id, e.data) for e in got] == [(ids[2], "n2"), (ids[3], "n3")]


def test_client_resumes_with_the_query_parameter_on_a_multi_topic_stream(hub: HubProcess) -> None:
    opened: list[Opened] = []
    ids = [publish(hub.url, topic, topic) for topic in ("a", "b", "a")]
    with EventSource(
        f"{hub.url}/events",
        params={"topic": "a"},
        last_event_id=ids[0],
        last_event_id_query=True,
        on_open=opened.append,
    ) as source:
        got = next(source)
    assert (got.id, got.data) == (ids[2], "a")
    assert opened[0].status_code == 200


async def test_async_client_reads_live_events_from_the_hub(hub: HubProcess) -> None:
    opened = threading.Event()
    async with AsyncEventSource(f"{hub.url}/topics/live", on_open=lambda o: opened.set()) as source:
        iterator = source.__aiter__()
        task = asyncio.ensure_future(iterator.__anext__())
        await asyncio.get_running_loop().run_in_executor(None, opened.wait, DEADLINE)
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{hub.url}/topics/live", json={"data": {"x": 1}})
        event = await asyncio.wait_for(task, DEADLINE)
    assert json.loads(event.data) == {"x": 1}
    assert event.id == response.json()["id"]


def test_httpx_sse_reads_the_hub(hub: HubProcess) -> None:
    ids = [publish(hub.url, "h", f"line {n}\nsecond") for n in range(3)]
    with (
        httpx.Client(timeout=10) as client,
        httpx_sse.connect_sse(
            client, "GET", f"{hub.url}/topics/h", headers={"Last-Event-ID": ids[0]}
        ) as event_source,
    ):
        assert event_source.response.headers["content-type"].startswith("text/event-stream")
        got = []
        for sse in event_source.iter_sse():
            if not sse.data:
                continue  # httpx-sse yields data-less blocks (the hub's `retry:`); browsers don't
            got.append(sse)
            if len(got) == 2:
                break
    assert [(s.id, s.data, s.event) for s in got] == [
        (ids[1], "line 1\nsecond", "message"),
        (ids[2], "line 2\nsecond", "message"),
    ]
