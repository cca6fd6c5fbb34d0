"""The demos' stream routes count against ``--max-connections`` like ``/topics/…``.

Issue 9, finding 6: ``GET /chat/answers/{id}/events`` and ``GET /chat/{message}``
bypassed the limit (25 open against a limit of 5).  Every stream route now goes
through the server's one admission (``ssehub.server.admit_stream``) and is
refused the same way: JSON ``503 too_many_connections`` with ``Retry-After``.
Under ``ssehub serve`` the HTTP layer counts every connection against the same
limit, so a full hub refuses any request at all the same way; the URLs a test
needs (an answer must be created by a POST) are therefore made before it fills.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.polling import poll_until
from tests.support.processes import HubProcess, start_hub
from tests.support.sse import StreamReader, open_stream

LIMIT = 2
#: Slow answers and a slow seed stream: every stream opened here stays open.
SLOW = {"SSEHUB_CHAT_THINK_DELAY": "30", "SSEHUB_CHAT_TOKEN_DELAY": "30"}
ARGS = ["--store", "memory", "--no-ticker", "--max-connections", str(LIMIT)]
ARGS += ["--demo-interval", "30", "--chat-max-running-per-client", "100"]


@pytest.fixture(scope="module")
def small_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    log_dir: Path = tmp_path_factory.mktemp("limits")
    with start_hub(ARGS, env=SLOW, log_dir=log_dir) as proc:
        yield proc


def _answer_events(hub: HubProcess) -> tuple[str, dict[str, str], bytes]:
    """A new answer's events URL, with the cookie of the session that owns it."""
    created = httpx.post(f"{hub.url}/chat/answers", json={"message": "慢"}, timeout=10)
    assert created.status_code == 201, created.text
    cookie = "; ".join(f"{name}={value}" for name, value in created.cookies.items())
    return f"{hub.url}/{created.json()['events']}", {"Cookie": cookie}, b"retry: 3000"


#: kind -> (url of a new stream of that kind, bytes that show it is open)
Opener = Callable[[HubProcess], tuple[str, dict[str, str], bytes]]
OPENERS: dict[str, Opener] = {
    "topic": lambda hub: (f"{hub.url}/topics/news", {}, b"retry: 3000"),
    "answer_events": _answer_events,
    "one_shot": lambda hub: (f"{hub.url}/chat/你好", {}, b"event: connected"),
    "root": lambda hub: (hub.url + "/", {"Accept": "*/*"}, b"event: connected"),
    "ticker_events": lambda hub: (f"{hub.url}/ticker/events?symbol=AAPL", {}, b"retry: 3000"),
}


def _open_streams(hub: HubProcess) -> int:
    return int(httpx.get(f"{hub.url}/healthz", timeout=10).json()["open_streams"])


def _refused(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=10)


def _admits_a_stream(hub: HubProcess) -> bool:
    with httpx.stream("GET", f"{hub.url}/topics/probe", timeout=10) as response:
        return response.status_code == 200


@pytest.mark.parametrize("holder", sorted(OPENERS))
def test_every_stream_route_is_refused_at_the_limit_whatever_holds_it(
    small_hub: HubProcess, holder: str
) -> None:
    """Two streams of one kind fill the hub; then no route opens a third, until one leaves."""
    hub = small_hub
    holders = [OPENERS[holder](hub) for _ in range(LIMIT)]
    others = {kind: OPENERS[kind](hub) for kind in sorted(OPENERS)}
    with contextlib.ExitStack() as stack:
        readers: list[StreamReader] = []  # kept: a reader dropped early closes its stream
        for url, headers, opened in holders:
            reader = stack.enter_context(open_stream(url, headers=headers))
            assert reader.response.status_code == 200
            reader.read_until(opened)
            readers.append(reader)
        for kind, (url, headers, _) in others.items():
            answer = _refused(url, headers)
            assert answer.status_code == 503, (kind, answer.text)
            assert answer.headers["content-type"] == "application/json"
            assert answer.json()["error"] == "too_many_connections"
            assert answer.headers["retry-after"] == "5"
    # the streams are gone: the hub admits new ones again
    poll_until(
        lambda: all(_admits_a_stream(hub) for _ in range(LIMIT)), "the hub to admit streams again"
    )


def test_a_refused_one_shot_chat_starts_no_answer(small_hub: HubProcess) -> None:
    hub = small_hub
    url, headers, _ = OPENERS["one_shot"](hub)
    before = httpx.get(f"{hub.url}/chat/answers", timeout=10).json()["running"]
    with contextlib.ExitStack() as stack:
        # keep the readers: a reader dropped early closes its stream
        readers = [stack.enter_context(open_stream(f"{hub.url}/topics/full")) for _ in range(LIMIT)]
        for reader in readers:
            reader.read_until(b"retry: 3000")
        for _ in range(3):
            assert _refused(url, headers).status_code == 503
    poll_until(lambda: _open_streams(hub) == 0, "the streams to close")
    after = httpx.get(f"{hub.url}/chat/answers", timeout=10).json()["running"]
    assert after == before
    poll_until(lambda: _open_streams(hub) == 0, "the streams to close")
