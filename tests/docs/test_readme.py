"""Every Python snippet in README.md runs as written, against a real hub or a real uvicorn.

Snippets are the fenced ``python`` blocks.  A block that uses ``@app.`` without
defining ``app`` continues the block before it.  Blocks that define an app run
under uvicorn on a free port and are exercised over HTTP; the others run as
scripts (top-level ``await`` allowed, ``http://localhost:8004`` pointed at a
test hub).  Each block must be claimed by a test here, so a new snippet cannot
go untested.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from ssehub.client import EventSource
from tests.support.polling import poll_until
from tests.support.processes import HubProcess
from tests.support.readme import RUNNER, claimed, snippets
from tests.support.servers import serve_in_process
from tests.support.sse import open_stream

MARKERS = {
    "client": "EventSource(",
    "protocol": "EventStreamParser()",
    "app": "hub_app.subscribe(",
    "login": "set_cookie(",
    # Run by tests/docs/test_recipes.py:
    "django": "from django",
    "flask": "Flask(__name__)",
    "celery": "Celery(",
    "resumable": "hub_app.resumable(",
    "mcp": "HubSessionManager(",
}


def test_every_python_snippet_is_claimed_by_a_test() -> None:
    for snippet in snippets():
        owners = [name for name, marker in MARKERS.items() if marker in snippet]
        assert len(owners) == 1, f"no test (or several: {owners}) runs this snippet:\n{snippet}"


def test_protocol_snippet_shows_what_it_returns() -> None:
    """Each expression's result is exactly the comment beside it (or on the next line)."""
    source = claimed(MARKERS["protocol"])
    lines = source.splitlines()
    namespace: dict[str, object] = {}
    checked = 0
    for node in ast.parse(source).body:
        code = ast.Module(body=[node], type_ignores=[])
        if not isinstance(node, ast.Expr):
            exec(compile(code, "README.md", "exec"), namespace)
            continue
        value = eval(compile(ast.Expression(node.value), "README.md", "eval"), namespace)
        line = lines[node.lineno - 1]
        after = lines[node.end_lineno] if node.end_lineno < len(lines) else ""
        comment = line.partition("#")[2] or after.removeprefix("#")
        assert comment.strip() == repr(value), line
        checked += 1
    assert checked == 3


def test_client_snippet_prints_events_from_a_real_hub(hub: HubProcess, tmp_path: Path) -> None:
    script = tmp_path / "client_snippet.py"
    script.write_text(claimed(MARKERS["client"]).replace("http://localhost:8004", hub.url))
    out = tmp_path / "out.txt"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, script],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        poll_until(
            lambda: httpx.get(f"{hub.url}/healthz").json()["open_streams"] == 1,
            "the snippet to subscribe",
        )
        event_id = httpx.post(f"{hub.url}/topics/news", content="hello").json()["id"]
        poll_until(lambda: f"message {event_id} hello" in out.read_text(), "the printed event")
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def readme_app(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The README's app (mount + own routes + /count) under a real uvicorn."""
    folder = tmp_path_factory.mktemp("readme-app")
    (folder / "readme_app.py").write_text(claimed(MARKERS["app"]))
    with serve_in_process("readme_app:app", log_path=folder / "uvicorn.log", cwd=folder) as url:
        yield url


def test_app_snippet_mounts_the_hub_and_serves_its_own_rooms(readme_app: str) -> None:
    assert httpx.get(f"{readme_app}/sse/healthz").json()["status"] == "ok"
    answer = httpx.post(f"{readme_app}/sse/topics/news", json={"data": "mounted"})
    assert answer.status_code == 201, answer.text
    with open_stream(f"{readme_app}/rooms/r1") as reader:
        reader.read_until(b"retry:")
        said = httpx.post(f"{readme_app}/rooms/r1", content="hi")
        assert said.status_code == 200, said.text
        event = reader.read_events(1)[0]
        assert (event.data, event.id) == ("hi", said.json()["id"])


def test_count_snippet_ends_and_a_client_stops_after_the_last_number(readme_app: str) -> None:
    with EventSource(f"{readme_app}/count", sleep=lambda _delay: None) as source:
        events = list(source)
    assert [e.id for e in events] == [str(i) for i in range(100)]
    assert events[-1].data == "token 99"


@pytest.mark.parametrize(
    ("cursor", "first"), [("41", "42"), ("garbage", "0"), ("-5", "0"), ("٣", "0")]
)
def test_count_snippet_resumes_after_the_cursor(readme_app: str, cursor: str, first: str) -> None:
    url = f"{readme_app}/count?last_event_id={quote(cursor)}"
    with open_stream(url) as reader:
        reader.read_to_end()
        ids = [e.id for e in reader.events]
    assert ids == [str(i) for i in range(int(first), 100)]


def test_count_snippet_answers_204_once_everything_was_sent(readme_app: str) -> None:
    answer = httpx.get(f"{readme_app}/count", headers={"Last-Event-ID": "99"})
    assert answer.status_code == 204


def test_login_snippet_sets_a_cookie_the_hub_accepts() -> None:
    """Issue 11: the FastAPI login route's cookie carries a token the hub verifies."""
    import asyncio

    from fastapi.testclient import TestClient

    from ssehub.server import TokenVerifier

    namespace: dict[str, object] = {}
    exec(compile(claimed("set_cookie("), "README-login", "exec"), namespace)
    client = TestClient(namespace["app"], base_url="https://testserver")  # type: ignore[arg-type]
    answer = client.post("/login")
    assert answer.status_code == 200
    header = answer.headers["set-cookie"].lower()
    for attribute in ("httponly", "secure", "samesite=strict", "path=/"):
        assert attribute in header
    token = answer.cookies["ssehub_access_token"]
    verifier = TokenVerifier(key=str(namespace["HUB_KEY"]))
    claims = asyncio.run(verifier.verify(token))
    assert claims.subscribe.allows("users/alice/inbox")
    assert not claims.subscribe.allows("users/bob/inbox")
