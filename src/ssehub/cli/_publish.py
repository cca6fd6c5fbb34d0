"""``ssehub publish TOPIC DATA``: publish events to a hub, print the IDs it assigns.

Each event is one ``POST {url}/topics/{topic}`` with the JSON body
``{"data": …, "event": …}`` (DESIGN.md); the hub answers ``201 {"id", "topic"}``
and the ID is printed on its own line, flushed at once.  ``DATA`` is text, or
with ``--json`` a JSON value (the hub sends a non-string value as its JSON
text).  ``-`` reads stdin: all of it as one event, or with ``--lines`` one
event per line, published as each line arrives (``tail -f log | ssehub
publish logs - --lines``).

Of any answer at most 64 KiB is read (an error message, the ``201`` body), and
the ID and any message from the hub are escaped before they are printed
(:func:`~._output.printable`), so a hostile server can neither exhaust memory
nor drive the terminal.

Exit codes: 0 every event published; 1 the hub is unreachable or refused an
event (its JSON message is printed; events before it stay published); 2 bad
arguments or input (an invalid topic, event type or JSON value, non-UTF-8
input); 130 Ctrl+C.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import click
import httpx

from ..errors import InvalidEventError, InvalidTopicError
from ..hub import validate_event_type, validate_topic
from ._output import (
    BadUsage,
    Failure,
    OneLineCommand,
    guarded,
    hub_error_message,
    parse_headers,
    printable,
    read_capped,
    stream_url,
)
from ._params import DURATION

__all__ = ["publish"]

DEFAULT_URL = "http://127.0.0.1:8004"


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadUsage(f"{where} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _strip_line_end(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def _texts(data: str, lines: bool) -> Iterator[tuple[str, str]]:
    """The texts to publish, each with where it came from (for error messages)."""
    if data != "-":
        if lines:
            for number, line in enumerate(data.removesuffix("\n").split("\n"), 1):
                yield _strip_line_end(line), f"DATA line {number}"
        else:
            yield data, "DATA"
        return
    if not lines:
        yield _decode(sys.stdin.buffer.read(), "stdin"), "stdin"
        return
    for number, raw in enumerate(iter(sys.stdin.buffer.readline, b""), 1):
        where = f"stdin line {number}"
        yield _strip_line_end(_decode(raw, where)), where


def _value(text: str, as_json: bool, where: str) -> Any:
    if not as_json:
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadUsage(f"{where} is not valid JSON ({exc})") from None


class _Publisher:
    """Posts events to one topic on one hub over one kept-alive connection."""

    def __init__(
        self, base: str, topic: str, event: str | None, headers: dict[str, str], timeout: float
    ) -> None:
        self.url = f"{base.rstrip('/')}/topics/{quote(topic, safe='/')}"
        self.base = base
        self.event = event
        self.client = httpx.Client(headers=headers, timeout=timeout)

    def post(self, value: Any) -> str:
        body: dict[str, Any] = {"data": value}
        if self.event is not None:
            body["event"] = self.event
        try:
            with self.client.stream("POST", self.url, json=body) as response:
                status, content = response.status_code, read_capped(response)
        except httpx.TimeoutException:
            raise Failure(f"the hub at {self.base} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise Failure(f"cannot reach the hub at {self.base}: {exc}") from None
        if status != 201:
            message = hub_error_message(status, content)
            raise Failure(f"the hub refused the event: {message}")
        try:
            event_id = json.loads(content)["id"]
        except (ValueError, KeyError, TypeError):
            raise Failure(
                f"{self.url} answered 201 without an event ID: is it an ssehub?"
            ) from None
        return printable(str(event_id))

    def close(self) -> None:
        self.client.close()


_EXAMPLES = """
\b
Examples:
  ssehub publish news 'hello'                       # prints the new event's ID
  ssehub publish chat/42 '{"text": "hi"}' --json --event message
  echo 'from stdin' | ssehub publish news -
  tail -f app.log | ssehub publish logs - --lines   # one event per line
  SSEHUB_URL=http://hub:8004 ssehub publish news 'hi' -H 'Authorization: Bearer TOKEN'
"""


@click.command(cls=OneLineCommand, epilog=_EXAMPLES)
@click.argument("topic")
@click.argument("data", required=False)
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    envvar="SSEHUB_URL",
    show_envvar=True,
    help="The hub's base URL.",
)
@click.option("-e", "--event", default=None, help="Event type (default: message).")
@click.option("--json", "as_json", is_flag=True, help="DATA is a JSON value, sent as JSON.")
@click.option("--lines", is_flag=True, help="Publish one event per line of DATA or stdin.")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Send this request header (repeatable).",
)
@click.option(
    "--timeout",
    type=DURATION,
    default="10s",
    show_default=True,
    help="Give up on a publish the hub does not answer in this long.",
)
@guarded
def publish(
    topic: str,
    data: str | None,
    url: str,
    event: str | None,
    as_json: bool,
    lines: bool,
    headers: tuple[str, ...],
    timeout: float,
) -> None:
    """Publish DATA to TOPIC and print the event ID the hub assigns.

    DATA is text, or a JSON value with --json. Use - to read it from stdin;
    with --lines each line is one event (published as it arrives), each ID
    printed on its own line.

    Exit codes: 0 published; 1 hub unreachable or it refused an event (its
    message is shown); 2 bad usage or input; 130 Ctrl+C.
    """
    if data is None:
        if not lines:
            raise BadUsage("Missing argument 'DATA' (use - to read stdin)")
        data = "-"
    try:
        validate_topic(topic)
        event = validate_event_type(event)
    except (InvalidTopicError, InvalidEventError) as exc:
        raise BadUsage(str(exc)) from None
    publisher = _Publisher(stream_url(url), topic, event, parse_headers(headers), timeout)
    try:
        for text, where in _texts(data, lines):
            event_id = publisher.post(_value(text, as_json, where))
            click.echo(event_id)
            sys.stdout.flush()
    finally:
        publisher.close()
