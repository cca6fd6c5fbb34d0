"""The ``mcp`` SDK's own client and server, two replicas on one store, a cut mid-response.

Two uvicorn processes serve tests/server/apps/mcp_app.py on one Redis (or one
SQLite file); a TCP proxy plays the load balancer.  The client calls a tool that
reports progress; at step 3 the proxy moves to the other process and resets the
connection.  The SDK client reconnects with ``Last-Event-ID``, the other process
serves the rest from the store, and the client sees every step once and the
result.  Issue 16.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from tests.server.apps.mcp_app import build_app
from tests.support.redis_server import redis_or_skip
from tests.support.servers import serve_in_thread, start_uvicorn
from tests.support.tcp_proxy import run_proxy

APP = "tests.server.apps.mcp_app:app"


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


@pytest.fixture(params=["redis", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'mcp.db'}"
        return
    with redis_or_skip(tmp_path / "redis") as server:
        yield server.url


async def test_a_cut_client_resumes_on_the_other_process_with_no_loss_and_no_duplicate(
    store_url: str, tmp_path: Path
) -> None:
    env = {"SSEHUB_TEST_MCP_STORE": store_url}
    gate = tmp_path / "gate"
    steps: list[float] = []
    with (
        start_uvicorn(APP, log_path=tmp_path / "a.log", env=env) as first,
        start_uvicorn(APP, log_path=tmp_path / "b.log", env=env) as second,
        run_proxy(_port(first.url)) as proxy,
    ):

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            steps.append(progress)
            if progress == 3:
                proxy.route_to(_port(second.url))
                proxy.cut()
                gate.touch()

        async with (
            streamable_http_client(f"{proxy.url}/mcp") as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            # The client checks a result against the tool's schema, listed once: list it
            # now, so no request of the session has to reach the other process later.
            await session.list_tools()
            result = await session.call_tool(
                "count",
                {"n": 10, "hold_at": 4, "gate": str(gate)},
                progress_callback=on_progress,
            )

    assert steps == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    # The resume was a GET with Last-Event-ID that the second process answered itself.
    assert 'GET /mcp HTTP/1.1" 200' in (tmp_path / "b.log").read_text()
    [content] = result.content
    assert isinstance(content, TextContent)
    # The tool ran on the first process; the second only served the stream.
    assert content.text == f"counted to 10 on pid {first.proc.pid}"


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Host": "127.0.0.1"}


def test_another_process_resumes_a_session_only_with_that_sessions_ids(tmp_path: Path) -> None:
    """Over HTTP, two managers on one file: B replays A's session to its owner, 404 to others."""
    store = f"sqlite:{tmp_path / 'mcp.db'}"
    with (
        serve_in_thread(build_app(store)) as first,
        serve_in_thread(build_app(store)) as second,
        httpx.Client(timeout=10) as client,
    ):
        with client.stream("POST", f"{first}/mcp", json=INITIALIZE, headers=HEADERS) as answer:
            session_id = answer.headers["mcp-session-id"]
            body = answer.read().decode()
        priming = next(line[4:] for line in body.splitlines() if line.startswith("id: "))

        resumed = client.get(
            f"{second}/mcp",
            headers={**HEADERS, "mcp-session-id": session_id, "Last-Event-ID": priming},
        )
        assert resumed.status_code == 200, resumed.text
        assert '"id":1' in resumed.text
        assert '"serverInfo"' in resumed.text  # the initialize response, replayed by B

        for claimed_session in ("someone-else", "x" * 200, session_id[::-1]):
            refused = client.get(
                f"{second}/mcp",
                headers={**HEADERS, "mcp-session-id": claimed_session, "Last-Event-ID": priming},
            )
            assert refused.status_code == 404, refused.text
            assert refused.json()["error"]["message"] == "Session not found"


def _open_session(client: httpx.Client, url: str, token: str | None) -> tuple[str, str]:
    """Initialize a session at ``url`` (as ``token``'s user); its id and the priming event's id."""
    headers = {**HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    with client.stream("POST", f"{url}/mcp", json=INITIALIZE, headers=headers) as answer:
        assert answer.status_code == 200, answer.read()
        session_id = answer.headers["mcp-session-id"]
        body = answer.read().decode()
    return session_id, next(line[4:] for line in body.splitlines() if line.startswith("id: "))


def _resume(
    client: httpx.Client, url: str, session_id: str, event_id: str, token: str | None
) -> httpx.Response:
    headers = {**HEADERS, "mcp-session-id": session_id, "Last-Event-ID": event_id}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.get(f"{url}/mcp", headers=headers)


def test_another_process_resumes_a_session_only_for_the_credential_that_opened_it(
    tmp_path: Path,
) -> None:
    """The SDK serves a session only to its opener's credential; so does a resume elsewhere."""
    store = f"sqlite:{tmp_path / 'mcp.db'}"
    with (
        serve_in_thread(build_app(store, authenticate=True)) as first,
        serve_in_thread(build_app(store, authenticate=True)) as second,
        httpx.Client(timeout=10) as client,
    ):
        session_id, priming = _open_session(client, first, "alice")
        for intruder in ("mallory", None):
            for url in (first, second):  # the owning process, then the other one
                refused = _resume(client, url, session_id, priming, intruder)
                assert refused.status_code == 404, (url, intruder, refused.text)
        resumed = _resume(client, second, session_id, priming, "alice")
        assert resumed.status_code == 200, resumed.text
        assert '"serverInfo"' in resumed.text

        anonymous_session, anonymous_priming = _open_session(client, first, None)
        assert (
            _resume(client, second, anonymous_session, anonymous_priming, None).status_code == 200
        )
        refused = _resume(client, second, anonymous_session, anonymous_priming, "alice")
        assert refused.status_code == 404, refused.text
