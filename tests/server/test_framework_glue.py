"""ssehub inside a user's own FastAPI app: mounted, and as a response class.

The app (tests/server/apps/user_app.py) runs under a real uvicorn on a real port.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.polling import poll_until
from tests.support.servers import serve_in_process, start_uvicorn
from tests.support.sse import open_stream


@pytest.fixture(scope="module")
def user_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("user-app") / "uvicorn.log"
    with serve_in_process("tests.server.apps.user_app:app", log_path=log) as url:
        yield url


def test_the_mounted_hub_publishes_and_streams_under_its_prefix(user_app: str) -> None:
    with open_stream(f"{user_app}/hub/topics/news") as reader:
        reader.read_until(b"retry: 3000")
        answer = httpx.post(f"{user_app}/hub/topics/news", json={"data": "mounted"})
        assert answer.status_code == 201
        assert reader.read_events(1)[0].data == "mounted"
    assert httpx.get(f"{user_app}/hub/healthz").json()["status"] == "ok"


def test_your_own_endpoint_streams_hub_topics_with_exact_resume(user_app: str) -> None:
    ids = [httpx.post(f"{user_app}/rooms/r1/say", content=f"m{i}").json()["id"] for i in range(4)]
    with open_stream(f"{user_app}/rooms/r1", headers={"Last-Event-ID": ids[1]}) as reader:
        assert [(e.data, e.id) for e in reader.read_events(2)] == [("m2", ids[2]), ("m3", ids[3])]
    refused = httpx.get(f"{user_app}/rooms/secret")
    assert refused.status_code == 403


def test_response_class_brings_headers_heartbeats_and_resume(user_app: str) -> None:
    with open_stream(f"{user_app}/count", headers={"Last-Event-ID": "41"}) as reader:
        events = reader.read_events(3)
        assert [(e.data, e.id) for e in events] == [(f"token {i}", str(i)) for i in (42, 43, 44)]
        reader.read_until(b"token 44\n\n:\n\n")  # quiet generator: a heartbeat comment
        headers = reader.response.headers
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert "connection" not in headers


def test_response_class_closes_the_generator_when_the_client_leaves(user_app: str) -> None:
    with open_stream(f"{user_app}/count", headers={"Last-Event-ID": "99"}) as reader:
        reader.read_events(1)
    poll_until(
        lambda: "count from 100" in httpx.get(f"{user_app}/finished").json(),
        "the generator's finally to run",
    )


def test_a_mounted_hub_drains_its_streams_on_sigterm_so_uvicorn_exits(tmp_path: Path) -> None:
    """Issue 10: uvicorn waits for open connections before the lifespan's shutdown,
    so a mounted hub that drained only there kept the process alive while a client
    stayed connected."""
    log = tmp_path / "uvicorn.log"
    with start_uvicorn("tests.server.apps.user_app:app", log_path=log) as server:
        with open_stream(f"{server.url}/hub/topics/news") as reader:
            reader.read_until(b"retry: 3000")
            server.proc.send_signal(signal.SIGTERM)
            tail = reader.read_to_end()
        assert re.search(rb"retry: [0-9]+\n\n$", tail), tail
        server.proc.wait(timeout=15)  # raises if uvicorn is still waiting for the stream
    assert "Waiting for connections to close" not in log.read_text()
