"""``ssehub publish`` against a real hub: IDs printed, stdin, --lines, --json, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.cli import CliProcess, assert_one_line_error, run_cli
from tests.support.processes import HubProcess, free_port, start_hub

EVENT_ID = re.compile(r"[0-9a-z]+-\d+")


def _listen_json(hub: HubProcess, topic: str, count: int) -> CliProcess:
    """A ``listen --json`` on ``topic`` that is open (subscribed) when this returns."""
    listener = CliProcess("listen", f"{hub.url}/topics/{topic}", "--json", "-n", str(count))
    listener.wait_for_stderr("open: HTTP 200")
    return listener


def test_publish_prints_the_id_the_hub_assigns(hub: HubProcess) -> None:
    result = run_cli("publish", "--url", hub.url, "news", "hello")

    assert result.returncode == 0, result.stderr
    assert EVENT_ID.fullmatch(result.stdout.strip())
    assert result.stderr == ""


def test_published_event_reaches_a_listener_with_that_id(hub: HubProcess) -> None:
    with _listen_json(hub, "news", 1) as listener:
        published = run_cli("publish", "--url", hub.url, "news", "hello", "--event", "greeting")
        assert listener.wait(timeout=30) == 0

    event = json.loads(listener.stdout)
    assert event["data"] == "hello"
    assert event["event"] == "greeting"
    assert event["id"] == published.stdout.strip()


def test_publish_lines_publishes_each_stdin_line_as_one_event_in_order(hub: HubProcess) -> None:
    with _listen_json(hub, "logs", 3) as listener:
        result = run_cli("publish", "--url", hub.url, "logs", "-", "--lines", input="a\r\nb\n\nc")
        assert listener.wait(timeout=30) == 0

    ids = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert len(ids) == 4
    received = [json.loads(line) for line in listener.stdout.splitlines()]
    assert [e["data"] for e in received] == ["a", "b", ""]
    assert [e["id"] for e in received] == ids[:3]


def test_dash_publishes_all_of_stdin_as_one_event(hub: HubProcess) -> None:
    with _listen_json(hub, "news", 1) as listener:
        result = run_cli("publish", "--url", hub.url, "news", "-", input="line 1\nline 2\n")
        assert listener.wait(timeout=30) == 0

    assert len(result.stdout.splitlines()) == 1
    assert json.loads(listener.stdout)["data"] == "line 1\nline 2\n"


def test_json_value_is_sent_as_its_json_text(hub: HubProcess) -> None:
    with _listen_json(hub, "prices", 1) as listener:
        result = run_cli(
            "publish", "--url", hub.url, "prices", '{"sym": "ACME", "px": 1.5}', "--json"
        )
        assert listener.wait(timeout=30) == 0

    assert result.returncode == 0, result.stderr
    assert json.loads(json.loads(listener.stdout)["data"]) == {"sym": "ACME", "px": 1.5}


def test_hub_url_comes_from_the_environment(hub: HubProcess) -> None:
    result = run_cli("publish", "news", "hi", env={"SSEHUB_URL": hub.url})

    assert result.returncode == 0, result.stderr
    assert EVENT_ID.fullmatch(result.stdout.strip())


def test_invalid_json_value_is_a_usage_error() -> None:
    line = assert_one_line_error(run_cli("publish", "news", "{oops", "--json"), 2)

    assert "not valid JSON" in line


def test_invalid_topic_is_a_usage_error_before_any_request() -> None:
    line = assert_one_line_error(run_cli("publish", "--url", "http://127.0.0.1:1", "a b", "x"), 2)

    assert "invalid topic name" in line


def test_reserved_event_type_is_a_usage_error() -> None:
    line = assert_one_line_error(run_cli("publish", "news", "x", "--event", "ssehub-reset"), 2)

    assert "reserved" in line


def test_missing_arguments_are_a_one_line_usage_error() -> None:
    assert_one_line_error(run_cli("publish"), 2)
    line = assert_one_line_error(run_cli("publish", "news"), 2)

    assert "DATA" in line


def test_unreachable_hub_fails_with_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    line = assert_one_line_error(run_cli("publish", "--url", url, "news", "hello"), 1)

    assert "cannot reach the hub" in line
    assert url in line


def test_hub_refusal_prints_the_hubs_message(tmp_path: Path) -> None:
    with start_hub(["--store", "memory", "--max-body", "100"], log_dir=tmp_path) as small:
        result = run_cli("publish", "--url", small.url, "news", "x" * 500)

    line = assert_one_line_error(result, 1)
    assert "413" in line
    assert "payload_too_large" in line


def test_lines_already_published_stay_published_when_a_later_line_is_bad(
    hub: HubProcess,
) -> None:
    result = run_cli(
        "publish", "--url", hub.url, "news", "-", "--lines", "--json", input='1\n{"a": 2}\nnope\n'
    )

    line = assert_one_line_error(result, 2)
    assert "stdin line 3" in line
    first, second = result.stdout.splitlines()
    replay = run_cli(
        "listen", f"{hub.url}/topics/news", "--last-event-id", first, "-n", "1", "--json", "-q"
    )
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout) == {
        "event": "message",
        "data": '{"a": 2}',
        "id": second,
        "retry": 3000,
    }
