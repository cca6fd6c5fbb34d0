"""The chat demo's runs over real HTTP (issues 14 and 11): resume, stop, ownership, limits.

``GET /chat/answers/{id}/stream`` is the AI SDK's resume contract: ``204``
when the answer is not running, else a UI message stream (header
``x-vercel-ai-ui-message-stream: v1``) of the whole answer from its start,
then live, ending with ``data: [DONE]``.  The lifecycle lives in the store:
a restarted SQLite hub and a second Redis node answer the same.  An answer
belongs to the browser session that started it.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssehub.demos._responders import simulated_answer
from ssehub.protocol import EventStreamParser
from tests.support.node import run_peer
from tests.support.polling import poll_until
from tests.support.processes import HubProcess, RedisProcess, free_port, start_hub
from tests.support.sse import read_ui_message_stream

SLOW = {"SSEHUB_CHAT_TOKEN_DELAY": "0.08", "SSEHUB_CHAT_THINK_DELAY": "0.01"}
#: Answers that think long (three 1.5 s steps), then write quickly.
THOUGHTFUL = {"SSEHUB_CHAT_TOKEN_DELAY": "0.005", "SSEHUB_CHAT_THINK_DELAY": "1.5"}
#: Answers that a stop always reaches before their end.
SLOWEST = {"SSEHUB_CHAT_TOKEN_DELAY": "1", "SSEHUB_CHAT_THINK_DELAY": "0.01"}
FAST = {"SSEHUB_CHAT_TOKEN_DELAY": "0.001", "SSEHUB_CHAT_THINK_DELAY": "0.001"}
ARGS = ["--no-ticker"]


def browser(local_address: str | None = None) -> httpx.Client:
    """One browser: a client with its own cookie jar (and source address, if given)."""
    transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
    return httpx.Client(timeout=20, transport=transport)


def ask(client: httpx.Client, hub: HubProcess, message: str) -> str:
    created = client.post(f"{hub.url}/chat/answers", json={"message": message})
    assert created.status_code == 201, created.text
    return str(created.json()["answer_id"])


def state(client: httpx.Client, hub: HubProcess, answer_id: str) -> str:
    answer = client.get(f"{hub.url}/chat/answers/{answer_id}")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["state"])


def ui_stream(client: httpx.Client, url: str) -> list[Any]:
    return read_ui_message_stream(client, "GET", url)


def text_of(chunks: list[Any]) -> str:
    return "".join(c["delta"] for c in chunks if isinstance(c, dict) and c["type"] == "text-delta")


def wait_for_a_token(client: httpx.Client, hub: HubProcess, created: dict[str, Any]) -> None:
    """Read the answer's events route from its start until its first token, then leave."""
    url = f"{hub.url}/{created['events']}"
    parser = EventStreamParser()
    with client.stream("GET", url, params={"last_event_id": created["last_event_id"]}) as events:
        for raw in events.iter_bytes():
            if any(e.event == "content" for e in parser.feed(raw)):
                return
    raise AssertionError("the answer ended before its first token")


def test_a_late_reader_gets_the_whole_run_then_live_then_204(tmp_path: Path) -> None:
    with (
        start_hub(["--store", "memory", *ARGS], env=SLOW, log_dir=tmp_path) as hub,
        browser() as me,
    ):
        created = me.post(f"{hub.url}/chat/answers", json={"message": "续传"}).json()
        answer_id = created["answer_id"]
        wait_for_a_token(me, hub, created)  # tokens were written before the reader came
        stream = f"{hub.url}/{created['stream']}"
        chunks = ui_stream(me, stream)
        kinds = [c if isinstance(c, str) else c["type"] for c in chunks]
        assert kinds[:4] == ["start", "start-step", "reasoning-start", "reasoning-delta"]
        assert chunks[0]["messageId"] == answer_id
        assert kinds.count("text-start") == 1
        assert kinds[-4:] == ["text-end", "finish-step", "finish", "[DONE]"]
        assert chunks[-2] == {"type": "finish", "finishReason": "stop"}
        assert text_of(chunks) == simulated_answer("续传")
        assert me.get(stream).status_code == 204  # no run is active any more
        assert state(me, hub, answer_id) == "done"


def test_the_ai_sdk_itself_resumes_a_running_answer_and_sees_204_after(tmp_path: Path) -> None:
    """The ``ai`` package's DefaultChatTransport + readUIMessageStream accept every chunk."""
    with (
        start_hub(["--store", "memory", *ARGS], env=THOUGHTFUL, log_dir=tmp_path) as hub,
        browser() as me,
    ):
        created = me.post(f"{hub.url}/chat/answers", json={"message": "AI SDK"}).json()
        cookie = "; ".join(f"{name}={value}" for name, value in me.cookies.items())
        # it resumes while the answer still thinks: the replay, then live, to the end
        message = run_peer("ai_sdk", "demo.mjs", hub.url, created["answer_id"], cookie)
        assert message["id"] == created["answer_id"]
        assert message["text"] == simulated_answer("AI SDK")
        assert message["reasoning"] == "分析问题\n搜索知识\n构建回答\n"
        after = run_peer("ai_sdk", "demo.mjs", hub.url, created["answer_id"], cookie)
        assert after == {"status": 204}


def test_nobody_else_can_read_or_stop_an_answer_and_its_owner_can_stop_it(
    tmp_path: Path,
) -> None:
    with (
        start_hub(["--store", "memory", *ARGS], env=SLOW, log_dir=tmp_path) as hub,
        browser() as owner,
        browser() as other,
    ):
        other.post(
            f"{hub.url}/chat/answers", json={"message": "我也有会话"}
        )  # a session of its own
        answer_id = ask(owner, hub, "我的回答")
        base = f"{hub.url}/chat/answers/{answer_id}"
        for client in (other, httpx.Client(timeout=10)):
            for method, url in [
                ("GET", base),
                ("GET", f"{base}/events"),
                ("GET", f"{base}/stream"),
                ("POST", f"{base}/stop"),
            ]:
                answer = client.request(method, url)
                assert answer.status_code == 404, (method, url, answer.text)
                assert answer.json()["error"] == "unknown_answer"
        # the hub's own topic API does not show the answer either (its events are private)
        with httpx.stream("GET", f"{hub.url}/topics/chat/{answer_id}?since=earliest") as raw:
            first = next(raw.iter_bytes())
            assert b"data:" not in first
        assert state(owner, hub, answer_id) == "running"
        stopped = owner.post(f"{base}/stop")
        assert stopped.status_code == 202
        poll_until(lambda: state(owner, hub, answer_id) == "stopped", "the answer to stop")
        assert owner.get(f"{base}/stream").status_code == 204


def test_one_client_flooding_posts_does_not_lock_out_the_others(tmp_path: Path) -> None:
    """Issue 11: 32 POSTs used to lock every user out with 429."""
    args = ["--store", "memory", *ARGS, "--chat-max-running-per-client", "2"]
    slow = {"SSEHUB_CHAT_TOKEN_DELAY": "5", "SSEHUB_CHAT_THINK_DELAY": "5"}
    with (
        start_hub(args, env=slow, log_dir=tmp_path) as hub,
        browser("127.0.0.2") as flood,
        browser("127.0.0.3") as alice,
    ):
        answers = [flood.post(f"{hub.url}/chat/answers", json={"message": "x"}) for _ in range(40)]
        assert [a.status_code for a in answers].count(201) == 2
        refused = answers[-1]
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_answers"
        assert refused.headers["retry-after"] == "2"
        fresh_cookie = httpx.Client(
            timeout=10, transport=httpx.HTTPTransport(local_address="127.0.0.2")
        )
        with fresh_cookie:  # a new session from the same address is still that client
            assert (
                fresh_cookie.post(f"{hub.url}/chat/answers", json={"message": "x"}).status_code
                == 429
            )
        assert alice.post(f"{hub.url}/chat/answers", json={"message": "我来了"}).status_code == 201


def test_the_lifecycle_survives_a_restart_with_the_sqlite_store(tmp_path: Path) -> None:
    port = free_port()
    args = ["--store", f"sqlite:{tmp_path / 'hub.db'}", *ARGS]
    with browser() as me:
        with start_hub(args, port=port, env=FAST, log_dir=tmp_path) as hub:
            done_id = ask(me, hub, "完成")
            poll_until(lambda: state(me, hub, done_id) == "done", "the answer to finish")
        with start_hub(
            args, port=port, env={**SLOW, "SSEHUB_CHAT_TOKEN_DELAY": "1"}, log_dir=tmp_path
        ) as hub:
            cut_id = ask(me, hub, "会被打断")
            poll_until(lambda: state(me, hub, cut_id) == "running", "the answer to run")
            hub.terminate()
        with start_hub(args, port=port, env=FAST, log_dir=tmp_path) as hub:
            assert state(me, hub, done_id) == "done"
            assert me.get(f"{hub.url}/chat/answers/{done_id}/stream").status_code == 204
            assert state(me, hub, cut_id) == "failed"  # interrupted: settled, not awaited
            with browser() as stranger:
                assert stranger.get(f"{hub.url}/chat/answers/{done_id}").status_code == 404


@pytest.mark.redis
def test_two_redis_nodes_share_the_lifecycle_resume_and_stop(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    args = ["--store", redis_server.url, *ARGS]
    with ExitStack() as stack, browser() as me:
        node_a, node_b = (
            stack.enter_context(start_hub(args, env=SLOWEST, log_dir=tmp_path)) for _ in range(2)
        )
        answer_id = ask(me, node_a, "两个节点")
        assert state(me, node_b, answer_id) == "running"
        with me.stream("GET", f"{node_b.url}/chat/answers/{answer_id}/stream") as response:
            assert response.status_code == 200
            parser = EventStreamParser()
            chunks: list[Any] = []
            stopped = False
            for raw in response.iter_bytes():
                for event in parser.feed(raw):
                    chunks.append(event.data if event.data == "[DONE]" else json.loads(event.data))
                if not stopped and any(
                    isinstance(c, dict) and c["type"] == "text-delta" for c in chunks
                ):
                    stop = me.post(f"{node_b.url}/chat/answers/{answer_id}/stop")
                    assert stop.status_code == 202
                    stopped = True
                if chunks and chunks[-1] == "[DONE]":
                    break
        assert chunks[0] == {"type": "start", "messageId": answer_id}
        assert chunks[-2:] == [{"type": "abort"}, "[DONE]"]
        assert simulated_answer("两个节点").startswith(text_of(chunks))
        poll_until(lambda: state(me, node_a, answer_id) == "stopped", "node A to stop it")
        assert state(me, node_b, answer_id) == "stopped"
        assert me.get(f"{node_a.url}/chat/answers/{answer_id}/stream").status_code == 204
