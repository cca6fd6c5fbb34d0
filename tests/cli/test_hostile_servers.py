"""``listen`` and ``publish`` against servers that misbehave: huge bodies, terminal escapes.

Each server is a real one on a loopback port (:class:`FaultServer`); memory is
read from /proc while the command runs.  Issue 9, findings 12 and 13.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from tests.support.cli import CliProcess, assert_one_line_error, run_cli, wait_bounded
from tests.support.fault_server import Action, Endless, FaultServer, Received, event, head

#: What a bounded command may hold, python and httpx included (about 40 MB here).
RSS_BOUND_MB = 150

ESC = "\x1b"
CSI = "\x9b"
TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J"  # clears the screen


def _json_answer(status: int, payload: object) -> list[Action]:
    body = json.dumps(payload).encode()
    return [head(status, "application/json", extra=[("Content-Length", str(len(body)))]), body]


@pytest.mark.parametrize("status", [400, 201])
def test_publish_reads_at_most_a_capped_body_of_any_answer(status: int) -> None:
    """A server answering with an endless body: publish reads 64 KiB, says so, exits 1."""

    def script(n: int, request: Received) -> Sequence[Action]:
        return [head(status, "application/json"), Endless(b"x" * 65536)]

    with FaultServer(script) as server:
        cli = CliProcess("publish", "--url", server.url, "news", "hello")
        code, peak = wait_bounded(cli, rss_mb=RSS_BOUND_MB, timeout=60)
    assert code == 1, cli.stderr
    assert len(cli.stderr.splitlines()) == 1
    assert cli.stderr.startswith("Error: ")
    assert peak < RSS_BOUND_MB


def test_publish_escapes_the_id_the_server_sends() -> None:
    answer = _json_answer(201, {"id": f"{TITLE}1-1{CSI}", "topic": "news"})
    with FaultServer(lambda n, r: answer) as server:
        result = run_cli("publish", "--url", server.url, "news", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "\\x1b]0;pwned\\x071-1\\x9b"


def test_publish_escapes_the_servers_error_message() -> None:
    answer = _json_answer(400, {"error": "bad\u202e", "message": f"{CLEAR}gone"})
    with FaultServer(lambda n, r: answer) as server:
        line = assert_one_line_error(run_cli("publish", "--url", server.url, "news", "x"), 1)
    assert ESC not in line
    assert "\u202e" not in line
    assert "\\x1b[2Jgone" in line


def _evil_stream(n: int, request: Received) -> Sequence[Action]:
    if n == 0:
        return [head(), event(f"data{CSI}", id=f"{TITLE}7")]
    return _json_answer(403, {"error": "forbidden", "message": f"{CLEAR}no {TITLE}"})


@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_listen_escapes_ids_and_messages_from_the_server(mode: list[str]) -> None:
    with FaultServer(_evil_stream) as server:
        result = run_cli("listen", server.url, "--reconnect-delay", "10ms", *mode, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "reconnecting in" in result.stderr  # that line shows the Last-Event-ID
    for text in (result.stdout, result.stderr):
        assert ESC not in text
        assert CSI not in text
    assert "\\x1b]0;pwned\\x077" in result.stderr
    assert "\\x1b[2Jno" in result.stderr.splitlines()[-1]
    if mode:
        assert json.loads(result.stdout) == {
            "event": "message",
            "data": f"data{CSI}",
            "id": f"{TITLE}7",
        }
