"""``ssehub bench --url`` against servers that misbehave: bounded memory, one line, no storm.

Each server is a real one on a loopback port (:class:`FaultServer`); memory
is read from /proc (the bench process and its workers) while it runs.  Issue 9,
findings 10 and 13.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tests.support.cli import CliProcess, wait_bounded
from tests.support.fault_server import Action, Endless, FaultServer, Received, event, head

RSS_BOUND_MB = 250  # python, httpx, rich and one worker process (about 90 MB here)


def _created(request: Received) -> list[Action]:
    body = json.dumps({"id": "1-1", "topic": "t"}).encode()
    return [head(201, "application/json", extra=[("Content-Length", str(len(body)))]), body]


def test_bench_against_an_endless_line_stays_bounded_and_fails_with_one_line() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        if request.method == "POST":
            return _created(request)
        return [head(), b"retry: 1000\n\n", Endless(b"x" * 65536)]

    with FaultServer(script) as server:
        cli = CliProcess("bench", "--url", server.url, "-s", "2", "-k", "5", "-q")
        code, peak = wait_bounded(cli, rss_mb=RSS_BOUND_MB, timeout=90)
        streams_opened = sum(r.method == "GET" for r in server.requests)
    assert code == 1, cli.stderr
    assert "Traceback" not in cli.stderr
    errors = [line for line in cli.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, cli.stderr
    assert "line" in errors[0]
    assert streams_opened <= 2 * 3  # no reconnect storm
    assert peak < RSS_BOUND_MB


def test_bench_escapes_the_servers_error_message() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        body = json.dumps({"error": "forbidden", "message": "\x1b]0;pwned\x07no"}).encode()
        extra = [("Content-Length", str(len(body)))]
        return [head(403, "application/json", extra=extra), body]

    with FaultServer(script) as server:
        cli = CliProcess("bench", "--url", server.url, "-s", "1", "-k", "1", "-q")
        code, _ = wait_bounded(cli, rss_mb=RSS_BOUND_MB, timeout=90)
    assert code == 1
    assert "\x1b" not in cli.stderr
    assert "\\x1b]0;pwned\\x07no" in cli.stderr


def test_bench_against_a_stream_that_ends_at_once_does_not_storm() -> None:
    def script(n: int, request: Received) -> Sequence[Action]:
        if request.method == "POST":
            return _created(request)
        return [head(), b"retry: 0\n\n", event("1 0", id="x")]

    with FaultServer(script) as server:
        cli = CliProcess(
            "bench", "--url", server.url, "-s", "1", "-k", "3", "-q", "--drain-timeout", "2s"
        )
        code, _ = wait_bounded(cli, rss_mb=RSS_BOUND_MB, timeout=90)
        streams_opened = sum(r.method == "GET" for r in server.requests)
    assert code == 1, cli.stderr
    assert "Traceback" not in cli.stderr
    assert streams_opened <= 20
