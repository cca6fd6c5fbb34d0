"""``ssehub listen URL``: print an event stream, parsed, reconnecting.

stdout gets the events (pretty lines, ``--json`` lines or ``--raw`` wire
bytes, whole chunks as read, so with ``--max-events`` the last chunk may
hold more), flushed one event (or chunk) at a time; stderr gets the connection
state (``connecting``, ``open``, ``reconnecting in 3.0s``, ``closed``) unless
``-q``, and the one-line error, if any.  Server-controlled text on stderr (its
error messages, event IDs) and in pretty or JSON lines is escaped
(:func:`~._output.printable`); ``--raw`` writes the bytes as sent, as curl does.
Exit codes: 0 when it stopped as asked (``--max-events``, ``--timeout``) or the
stream ended for good; 1 when the server can't be reached on the first
connection (unless ``--retry-connect``), refuses the stream, or reconnecting
gave up; 2 for bad arguments; 130 on Ctrl+C.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass

import click
from rich.console import Console

from ..client import EventSource, HTTPXTransport, Opened, Reconnecting, ReconnectPolicy
from ..errors import (
    BadStatusError,
    ClientError,
    ConnectError,
    ContentTypeError,
    ReconnectExhaustedError,
    SSEHubError,
)
from ..protocol import Event
from ._output import (
    BadUsage,
    Failure,
    OneLineCommand,
    guarded,
    hub_error_message,
    parse_headers,
    printable,
    stream_url,
    terminal_console,
)
from ._params import DURATION
from ._render import EventPrinter, json_line
from ._tap import TapTransport

__all__ = ["listen"]


def _reason(error: BaseException | None) -> str:
    """A short, one-line cause: the network error's own words where there is one."""
    if error is None:
        return "the stream ended"
    cause = error.__cause__
    if isinstance(error, ConnectError) and cause is not None and str(cause):
        return f"cannot connect: {cause}"
    return str(error) or type(error).__name__


@dataclass
class _StateLines:
    """Connection state lines on stderr (nothing when quiet)."""

    console: Console
    quiet: bool
    tap: TapTransport | None = None

    def say(self, text: str, style: str = "dim") -> None:
        if not self.quiet:
            self.console.print(printable(text), style=style)

    def on_open(self, opened: Opened) -> None:
        self.say(f"open: HTTP {opened.status_code}", style="green")

    def on_reconnect(self, info: Reconnecting) -> None:
        resume = f", Last-Event-ID {info.last_event_id}" if info.last_event_id else ""
        reason = _reason(info.error)
        if isinstance(info.error, BadStatusError) and self.tap is not None:
            reason = hub_error_message(info.error.status_code, self.tap.error_body)
        self.say(
            f"reconnecting in {info.delay:.1f}s (attempt {info.attempt}{resume}): {reason}",
            style="yellow",
        )


def _failure(error: SSEHubError, url: str, tap: TapTransport) -> Failure:
    if isinstance(error, BadStatusError):
        return Failure(f"{url}: {hub_error_message(error.status_code, tap.error_body)}")
    if isinstance(error, ContentTypeError):
        return Failure(f"{url} is not an event stream (Content-Type {error.content_type!r})")
    if isinstance(error, ReconnectExhaustedError):
        cause = error.__cause__
        last = (
            hub_error_message(cause.status_code, tap.error_body)
            if isinstance(cause, BadStatusError)
            else _reason(cause)
        )
        return Failure(f"{error}; last error: {last}")
    if isinstance(error, ConnectError):
        return Failure(f"{url}: {_reason(error)}")
    return Failure(f"{url}: {error}")


class _Output:
    """Writes events to stdout in the chosen format, flushing each one."""

    def __init__(self, mode: str, source: EventSource | None = None) -> None:
        self.mode = mode
        self.source = source
        self._printer = EventPrinter(terminal_console()) if mode == "pretty" else None

    def raw(self, chunk: bytes) -> None:
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()

    def event(self, event: Event) -> None:
        if self._printer is not None:
            self._printer.print(event)
        elif self.mode == "json":
            retry = self.source.retry if self.source is not None else None
            sys.stdout.write(json_line(event, retry) + "\n")
            sys.stdout.flush()


_EXAMPLES = """
\b
Examples:
  ssehub listen http://localhost:8004/topics/news
  ssehub listen 'localhost:8004/events?topic=a&topic=b' --json | jq .data
  ssehub listen localhost:8004 --raw                  # the seed's demo, as sent
  ssehub listen localhost:8004/topics/news --last-event-id 1a2b3c-41 --max-events 10
  ssehub listen https://hub.example/topics/x -H 'Authorization: Bearer TOKEN' -q
"""


@click.command(cls=OneLineCommand, epilog=_EXAMPLES)
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event per line.")
@click.option("--raw", is_flag=True, help="Print the stream's bytes exactly as received.")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Send this request header (repeatable).",
)
@click.option("--last-event-id", default="", help="Resume after this event ID.")
@click.option(
    "--reconnect/--no-reconnect",
    default=True,
    show_default=True,
    help="Reconnect (with Last-Event-ID) when the stream ends or breaks.",
)
@click.option(
    "--retry-connect",
    is_flag=True,
    help="Keep trying when the first connection can't be made (default: exit 1).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Give up after this many reconnect attempts in a row (0: never).",
)
@click.option(
    "--reconnect-delay",
    type=DURATION,
    default="3s",
    show_default=True,
    help="First reconnect delay, until the stream sends its own retry.",
)
@click.option(
    "-n",
    "--max-events",
    type=click.IntRange(0),
    default=0,
    help="Exit after this many events (0: no limit).",
)
@click.option(
    "--timeout",
    type=DURATION,
    default=None,
    help="Exit after this long (e.g. 10s, 2m), events or not.",
)
@click.option("-q", "--quiet", is_flag=True, help="No connection state lines on stderr.")
@guarded
def listen(
    url: str,
    as_json: bool,
    raw: bool,
    headers: tuple[str, ...],
    last_event_id: str,
    reconnect: bool,
    retry_connect: bool,
    max_attempts: int,
    reconnect_delay: float,
    max_events: int,
    timeout: float | None,
    quiet: bool,
) -> None:
    """Print the events of the stream at URL, like curl -N but parsed.

    One line per event: its type, its ID and its data (JSON shown compact and
    highlighted; colour only on a terminal, never with NO_COLOR). --json prints
    {"event", "data", "id", "retry"} lines for scripts; --raw the wire text.
    The stream is reopened when it ends or breaks, with the last event ID, so
    nothing is missed; its state is shown on stderr. A URL without a scheme is
    taken as http://.

    Exit codes: 0 stopped by --max-events, --timeout or the server; 1 server
    unreachable at the first connection (unless --retry-connect), refused the
    stream or reconnecting gave up; 2 bad usage; 130 Ctrl+C.
    """
    if as_json and raw:
        raise BadUsage("choose --json or --raw, not both")
    target = stream_url(url)
    request_headers = parse_headers(headers)
    if "\n" in last_event_id or "\r" in last_event_id or "\x00" in last_event_id:
        raise BadUsage("--last-event-id must not contain CR, LF or NUL")
    mode = "raw" if raw else "json" if as_json else "pretty"
    # The state lines below say what the client's log lines would: no doubles.
    logging.getLogger("ssehub.client").addHandler(logging.NullHandler())
    state = _StateLines(terminal_console(stderr=True), quiet)
    output = _Output(mode)
    tap = TapTransport(HTTPXTransport(), on_bytes=output.raw if raw else None)
    state.tap = tap
    policy = ReconnectPolicy(default_delay=reconnect_delay, max_attempts=max_attempts or None)
    source = EventSource(
        target,
        headers=request_headers,
        last_event_id=last_event_id,
        reconnect=reconnect,
        retry_connect=retry_connect,
        policy=policy,
        on_open=state.on_open,
        on_reconnect=state.on_reconnect,
        transport=tap,
    )
    output.source = source
    stop_reason = "the stream ended"
    timer: threading.Timer | None = None
    if timeout is not None:

        def stop() -> None:
            nonlocal stop_reason
            stop_reason = f"--timeout {timeout:g}s"
            source.close()
            tap.stop()

        timer = threading.Timer(timeout, stop)
        timer.daemon = True
        timer.start()
    state.say(f"connecting to {target}")
    received = 0
    try:
        for event in source:
            output.event(event)
            received += 1
            if max_events and received >= max_events:
                stop_reason = f"--max-events {max_events}"
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
        raise
    except BrokenPipeError:
        stop_reason = "stdout closed"
        raise
    except (ClientError, SSEHubError) as exc:
        stop_reason = "failed"
        raise _failure(exc, target, tap) from None
    finally:
        if timer is not None:
            timer.cancel()
        source.close()
        tap.close()
        state.say(f"closed ({stop_reason}; {received} events)")
