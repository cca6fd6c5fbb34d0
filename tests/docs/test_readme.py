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
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from ssehub.client import EventSource
from ssehub.protocol import EventStreamParser
from tests.support.fake_llm import FAKE_ANSWER, FakeLLM
from tests.support.node import run_peer
from tests.support.polling import poll_until
from tests.support.processes import HubProcess
from tests.support.readme import RUNNER, claimed, snippets
from tests.support.servers import serve_in_process
from tests.support.sse import open_stream, read_ui_message_stream

MARKERS = {
    "client": "EventSource(",
    "protocol": "EventStreamParser()",
    "app": "hub_app.subscribe(",
    "recipe": "RunLog(",
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


@pytest.fixture(scope="module")
def recipe_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The README's AI SDK recipe under a real uvicorn, its model a local OpenAI-format server."""
    folder = tmp_path_factory.mktemp("readme-recipe")
    (folder / "recipe_app.py").write_text(claimed(MARKERS["recipe"]))
    with FakeLLM() as llm:
        env = {"LLM_URL": llm.url, "OPENAI_API_KEY": "sk-recipe"}
        log = folder / "uvicorn.log"
        with serve_in_process("recipe_app:app", log_path=log, env=env, cwd=folder) as url:
            yield url


def _user(text: str) -> dict[str, Any]:
    return {"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}


def test_recipe_streams_a_model_answer_to_use_chat_and_resumes_it(recipe_app: str) -> None:
    with httpx.Client(timeout=20) as client:
        body = {"id": "chat-1", "messages": [_user("你好")], "trigger": "submit-message"}
        *chunks, done = read_ui_message_stream(client, "POST", f"{recipe_app}/api/chat", json=body)
        assert done == "[DONE]"
        assert [c["type"] for c in chunks][:2] == ["start", "text-start"]
        assert chunks[-1] == {"type": "finish"}
        assert "".join(c["delta"] for c in chunks if c["type"] == "text-delta") == FAKE_ANSWER
        assert client.get(f"{recipe_app}/api/chat/chat-1/stream").status_code == 204

        # a run that is still going: a reload (resume) gets it from its start, then live
        hanging = {"id": "chat-2", "messages": [_user("[hang] 慢慢说")]}
        with client.stream("POST", f"{recipe_app}/api/chat", json=hanging) as first:
            parser = EventStreamParser()
            for raw in first.iter_bytes():
                if any('"text-delta"' in e.data for e in parser.feed(raw)):
                    break
        resumed: list[Any] = []
        with client.stream("GET", f"{recipe_app}/api/chat/chat-2/stream") as again:
            assert again.status_code == 200
            parser = EventStreamParser()
            for raw in again.iter_bytes():
                resumed += [json.loads(e.data) for e in parser.feed(raw)]
                if any(c["type"] == "text-delta" for c in resumed):
                    break
        assert resumed[:3] == [
            {"type": "start"},
            {"type": "text-start", "id": "t"},
            {"type": "text-delta", "id": "t", "delta": "你好"},
        ]
        assert client.get(f"{recipe_app}/api/chat/bad%20id/stream").status_code == 400


def test_recipe_serves_the_ai_sdks_own_default_chat_transport(recipe_app: str) -> None:
    """The real ``ai`` package (pinned in tests/peers/ai_sdk) sends, reads, and resumes."""
    findings = run_peer("ai_sdk", "resume.mjs", recipe_app)
    assert findings["answer"] == FAKE_ANSWER
    assert findings["reconnectAfterEnd"] is None  # 204: no active run
    assert findings["resumedChunks"][:3] == [
        {"type": "start"},
        {"type": "text-start", "id": "t"},
        {"type": "text-delta", "id": "t", "delta": "你好"},
    ]
