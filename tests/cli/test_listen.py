"""``ssehub listen`` against a real hub: formats, resume, reconnect, stop conditions, errors."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.support.cli import CliProcess, assert_one_line_error, cli_env, run_cli
from tests.support.processes import HubProcess, free_port, start_hub


def _publish(hub: HubProcess, topic: str, *data: str) -> list[str]:
    """Publish each text as one event through the real CLI; return the IDs."""
    result = run_cli("publish", "--url", hub.url, topic, "-", "--lines", input="\n".join(data))
    assert result.returncode == 0, result.stderr
    ids = result.stdout.splitlines()
    assert len(ids) == len(data)
    return ids


def test_json_lines_carry_event_data_id_and_retry(hub: HubProcess) -> None:
    with CliProcess("listen", f"{hub.url}/topics/news", "--json", "-n", "2") as listener:
        listener.wait_for_stderr("open: HTTP 200")
        ids = _publish(hub, "news", "first", '{"n": 2}')
        assert listener.wait() == 0

    events = [json.loads(line) for line in listener.stdout.splitlines()]
    assert events == [
        {"event": "message", "data": "first", "id": ids[0], "retry": 3000},
        {"event": "message", "data": '{"n": 2}', "id": ids[1], "retry": 3000},
    ]


def test_pretty_lines_are_plain_text_when_piped(hub: HubProcess) -> None:
    with CliProcess("listen", f"{hub.url}/topics/news", "-n", "2") as listener:
        listener.wait_for_stderr("open: HTTP 200")
        ids = _publish(hub, "news", "hello world", '{"b": [1, 2]}')
        assert listener.wait() == 0

    assert "\x1b" not in listener.stdout
    first, second = listener.stdout.splitlines()
    assert first.split() == ["message", ids[0], "hello", "world"]
    assert second.split(maxsplit=2) == ["message", ids[1], '{"b": [1, 2]}']


def test_pretty_output_escapes_terminal_control_characters(hub: HubProcess) -> None:
    with CliProcess("listen", f"{hub.url}/topics/news", "-n", "1") as listener:
        listener.wait_for_stderr("open: HTTP 200")
        result = run_cli("publish", "--url", hub.url, "news", "-", input="red\x1b[31malert")
        assert result.returncode == 0, result.stderr
        assert listener.wait() == 0

    assert "\x1b" not in listener.stdout
    assert "red\\x1b[31malert" in listener.stdout


def test_raw_prints_the_wire_text(hub: HubProcess) -> None:
    with CliProcess("listen", f"{hub.url}/topics/news", "--raw", "-n", "1") as listener:
        listener.wait_for_stderr("open: HTTP 200")
        result = run_cli("publish", "--url", hub.url, "news", "two\nlines")
        assert listener.wait() == 0

    event_id = result.stdout.strip()
    first_write = listener.stdout.split("\n\n", 1)[0].split("\n")
    assert "retry: 3000" in first_write
    assert f"id: {event_id}\ndata: two\ndata: lines\n\n" in listener.stdout


def test_last_event_id_replays_what_came_after_it(hub: HubProcess) -> None:
    ids = _publish(hub, "news", "a", "b", "c")

    result = run_cli(
        "listen", f"{hub.url}/topics/news", "--last-event-id", ids[0], "--json", "-n", "2", "-q"
    )

    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["data"] for line in result.stdout.splitlines()] == ["b", "c"]
    assert result.stderr == ""


def test_several_topics_and_a_url_without_scheme(hub: HubProcess) -> None:
    ids = _publish(hub, "a", "on a") + _publish(hub, "b", "on b")
    before = ids[0].rsplit("-", 1)[0] + "-0"
    url = f"127.0.0.1:{hub.port}/events?topic=a&topic=b"

    result = run_cli("listen", url, "--last-event-id", before, "--json", "-n", "2", "-q")

    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["data"] for line in result.stdout.splitlines()] == ["on a", "on b"]


def test_reconnects_after_a_hub_restart_and_resumes_without_loss_or_duplicates(
    tmp_path: Path,
) -> None:
    port = free_port()
    hub_args = ["--store", f"sqlite:{tmp_path / 'hub.db'}", "--retry", "100", "--heartbeat", "1"]
    url = f"http://127.0.0.1:{port}/topics/jobs"
    with start_hub(hub_args, port=port, log_dir=tmp_path) as hub:
        listener = CliProcess("listen", url, "--json", "-n", "4", "--reconnect-delay", "100ms")
        listener.wait_for_stderr("open: HTTP 200")
        ids = _publish(hub, "jobs", "one", "two")
        listener.wait_for_stdout_lines(2)
    with listener, start_hub(hub_args, port=port, log_dir=tmp_path) as hub:
        ids += _publish(hub, "jobs", "three", "four")
        assert listener.wait(timeout=60) == 0

    events = [json.loads(line) for line in listener.stdout.splitlines()]
    assert [e["data"] for e in events] == ["one", "two", "three", "four"]
    assert [e["id"] for e in events] == ids
    assert "reconnecting in" in listener.stderr
    assert listener.stderr.count("open: HTTP 200") >= 2
    assert "Traceback" not in listener.stderr


def test_timeout_stops_the_listener_with_exit_0(hub: HubProcess) -> None:
    result = run_cli("listen", f"{hub.url}/topics/quiet", "--timeout", "500ms")

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "closed (--timeout 0.5s; 0 events)" in result.stderr


def test_quiet_prints_no_state_lines(hub: HubProcess) -> None:
    result = run_cli("listen", f"{hub.url}/topics/quiet", "--timeout", "300ms", "-q")

    assert result.returncode == 0
    assert result.stderr == ""


def test_ctrl_c_exits_130_without_a_traceback(hub: HubProcess) -> None:
    with CliProcess("listen", f"{hub.url}/topics/news") as listener:
        listener.wait_for_stderr("open: HTTP 200")
        listener.interrupt()
        code = listener.wait()

    assert code == 130
    assert "Traceback" not in listener.stderr
    assert "closed (interrupted" in listener.stderr


def test_closed_stdout_ends_the_listener_quietly(hub: HubProcess) -> None:
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssehub", "listen", f"{hub.url}/topics/news", "--json", "-q"],
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    os.close(write_end)
    try:
        received = b""
        deadline = time.monotonic() + 30
        while b"\n" not in received:  # publish until the listener, once subscribed, prints one
            assert time.monotonic() < deadline, "the listener printed nothing"
            _publish(hub, "news", "one")
            if select.select([read_end], [], [], 0.2)[0]:
                received += os.read(read_end, 65536)
    finally:
        os.close(read_end)
    _publish(hub, "news", "two", "three")
    _, stderr = proc.communicate(timeout=30)

    assert proc.returncode == 0, stderr
    assert b"Traceback" not in stderr


def test_bad_header_is_a_one_line_usage_error() -> None:
    line = assert_one_line_error(run_cli("listen", "localhost:1/x", "-H", "no colon here"), 2)

    assert "--header 'no colon here'" in line


def test_url_with_another_scheme_is_a_usage_error() -> None:
    line = assert_one_line_error(run_cli("listen", "ftp://example.com/x"), 2)

    assert "only http:// and https://" in line


def test_missing_url_is_a_one_line_usage_error() -> None:
    result = run_cli("listen")

    assert_one_line_error(result, 2)
    assert len(result.stderr.splitlines()) == 1


def test_unreachable_hub_without_reconnect_fails_with_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/topics/news"

    result = run_cli("listen", url, "--no-reconnect", "-q")

    line = assert_one_line_error(result, 1)
    assert "Connection refused" in line or "cannot connect" in line
    assert len(result.stderr.splitlines()) == 1


def test_unreachable_hub_fails_at_once_with_exit_1() -> None:
    """Issue 9, finding 17: a first connection that can't be made is not retried forever."""
    url = f"http://127.0.0.1:{free_port()}/"

    result = run_cli("listen", url, timeout=30)

    line = assert_one_line_error(result, 1)
    assert "cannot connect" in line
    assert "reconnecting" not in result.stderr


def test_retry_connect_keeps_trying_until_attempts_run_out() -> None:
    url = f"http://127.0.0.1:{free_port()}/topics/news"

    result = run_cli(
        "listen", url, "--retry-connect", "--max-attempts", "2", "--reconnect-delay", "50ms"
    )

    line = assert_one_line_error(result, 1)
    assert "gave up" in line
    assert result.stderr.count("reconnecting in") == 2


def test_refused_stream_shows_the_hubs_error_message(hub: HubProcess) -> None:
    result = run_cli("listen", f"{hub.url}/events", "-q")

    line = assert_one_line_error(result, 1)
    assert "HTTP 400 missing_topic" in line


def test_a_full_hub_without_reconnect_shows_its_503_message(tmp_path: Path) -> None:
    hub_args = ["--store", "memory", "--max-connections", "1"]
    with (
        start_hub(hub_args, log_dir=tmp_path) as full,
        CliProcess("listen", f"{full.url}/topics/a") as first,
    ):
        first.wait_for_stderr("open: HTTP 200")
        result = run_cli("listen", f"{full.url}/topics/a", "--no-reconnect", "-q")

    line = assert_one_line_error(result, 1)
    assert "HTTP 503 too_many_connections" in line


def test_a_url_that_is_not_an_event_stream_is_a_failure(hub: HubProcess) -> None:
    line = assert_one_line_error(run_cli("listen", f"{hub.url}/healthz", "-q"), 1)

    assert "not an event stream" in line
