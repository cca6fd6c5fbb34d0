"""Under a low open-file limit the hub answers 503, never runs out of descriptors (finding 4).

The hub runs with ``RLIMIT_NOFILE`` 256 and the default ``--max-connections``
(20,000): it says at start that it cannot honour that and serves fewer.
"""

from __future__ import annotations

import contextlib
import re
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.polling import poll_until
from tests.support.processes import HubProcess, start_hub
from tests.support.procfs import fd_count
from tests.support.raw_http import connect, read_answer

NOFILE = 256
STREAM = (
    b"GET /topics/t HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Accept: text/event-stream, application/json;q=0.5\r\n\r\n"
)
#: What a browser's EventSource sends: it must never get a 503 (issue 9, finding 18).
BROWSER_STREAM = b"GET /topics/t HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    args = ["--store", "memory", "--no-ticker", "--header-timeout", "2"]
    with start_hub(args, log_dir=tmp_path, preexec_fn=_low_nofile) as proc:
        yield proc


def _served(hub: HubProcess) -> bool:
    try:
        return httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def _cap(hub: HubProcess) -> int:
    found = re.findall(r"serving at most (\d+) connections", hub.log())
    assert len(found) == 1, f"expected one line about the cap at start:\n{hub.log()}"
    return int(found[0])


def test_streams_over_the_cap_get_a_json_503_and_descriptors_never_run_out(
    hub: HubProcess,
) -> None:
    cap = _cap(hub)
    assert cap < NOFILE
    streams: list[socket.socket] = []
    refused = []
    with contextlib.ExitStack() as stack:
        for _ in range(cap + 20):
            sock = stack.enter_context(connect(hub.port))
            sock.sendall(STREAM)
            answer = read_answer(sock)
            if answer.status == 200:
                streams.append(sock)
            else:
                refused.append(answer)
        assert cap - 2 <= len(streams) <= cap
        assert len(refused) >= 20
        assert all(a.status == 503 for a in refused)
        assert all(a.json()["error"] == "too_many_connections" for a in refused)
        assert fd_count(hub.proc.pid) < NOFILE
        # A browser is told to come back later, in a stream it will not give up on.
        with connect(hub.port) as browser:
            browser.sendall(BROWSER_STREAM)
            answer = read_answer(browser)
        assert answer.status == 200
        assert answer.headers["content-type"] == "text/event-stream"
        assert answer.body.startswith(b": 503 too_many_connections")
        assert b"\nretry: " in answer.body
        # A normal client is told clearly, not reset.
        answer = httpx.get(f"{hub.url}/healthz", timeout=10)
        assert answer.status_code == 503
        assert answer.json()["error"] == "too_many_connections"
        for sock in streams[:10]:
            sock.close()
        poll_until(
            lambda: httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200,
            what="a normal client is served once streams leave",
        )
    log = hub.log()
    assert "Too many open files" not in log
    assert "out of system resource" not in log
    assert "Traceback" not in log


def test_a_flood_beyond_the_descriptor_budget_is_reset_and_the_hub_recovers(
    hub: HubProcess,
) -> None:
    """400 idle connections: those beyond the budget are reset at once, the rest time out."""
    flood = []
    for _ in range(400):
        try:
            flood.append(connect(hub.port))
        except OSError:
            continue  # refused or reset on connect: fine, the hub shed it
    assert fd_count(hub.proc.pid) < NOFILE
    poll_until(
        lambda: _served(hub),
        timeout=15,
        what="the hub serves a normal client after the flood's header timeout",
    )
    for sock in flood:
        sock.close()
    log = hub.log()
    assert "over the ceiling" in log
    assert "out of system resource" not in log
    assert "Too many open files" not in log
