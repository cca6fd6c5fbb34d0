"""What ``listen``, ``publish`` and ``bench`` share: errors, consoles, URLs, headers.

Conventions:

* Results go to stdout; state, progress and errors go to stderr.
* Every error is one line on stderr, ``Error: …``, and one of the exit codes
  drawn in :mod:`ssehub.cli`: :data:`EXIT_FAILURE` (1) when something failed at
  run time (hub unreachable, refused, verification failed),
  :data:`EXIT_USAGE` (2) for bad arguments or input, :data:`EXIT_INTERRUPTED`
  (130) after Ctrl+C.  Never a traceback: :func:`guarded` turns anything
  unexpected into a one-line error (set ``SSEHUB_DEBUG=1`` to see the traceback).
* Consoles are rich's, with colour only on a terminal and never under
  ``NO_COLOR``; they never wrap lines (soft wrap), interpret markup or emoji.
* Every string a server controls (an error message, an event ID, a header)
  passes through :func:`printable` before it reaches a terminal, so a hostile
  server can't drive the user's terminal with escape sequences; error lines
  get it in :class:`Failure` whatever they hold.
* A response body is read through :func:`read_capped`: never more than
  :data:`BODY_LIMIT` bytes, however much the server sends.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any, ParamSpec, TypeVar

import click
import httpx
from rich.console import Console

__all__ = [
    "BODY_LIMIT",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "BadUsage",
    "Failure",
    "OneLineCommand",
    "guarded",
    "hub_error_message",
    "json_text",
    "one_line",
    "parse_headers",
    "printable",
    "read_capped",
    "stream_url",
    "terminal_console",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The most bytes read of any response body (an error message, a publish answer).
BODY_LIMIT = 64 * 1024

# RFC 9110 token characters: what a header field name may hold.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# What could drive a terminal or reorder what it shows: C0 controls but TAB and
# LF, DEL, C1 controls, the line and paragraph separators, bidi overrides.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to show on a terminal: each control character shown as ``\\x1b``/``\\u202e``.

    TAB and LF are kept (callers that need one line use :func:`one_line`).
    """
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def json_text(value: object) -> str:
    """``value`` as compact JSON text, non-ASCII kept, with every control character escaped.

    ``json.dumps`` escapes C0 controls but writes DEL, C1 controls and bidi
    overrides as they are; here they become ``\\u....`` escapes too (still the
    same JSON value), so JSON lines are safe on a terminal.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def read_capped(response: httpx.Response, limit: int = BODY_LIMIT) -> bytes:
    """At most ``limit`` bytes of a streamed ``response``'s body; the rest is never read."""
    body = bytearray()
    try:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) >= limit:
                break
    except httpx.HTTPError:
        pass  # what arrived is all there is
    return bytes(body[:limit])


class Failure(click.ClickException):
    """A run-time failure: ``Error: <message>`` on one line, exit code 1."""

    exit_code = EXIT_FAILURE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {one_line(printable(self.format_message()))}", err=True)


class BadUsage(click.UsageError):
    """Bad arguments or input: ``Error: <message> See '… --help'.`` on one line, exit code 2."""

    def show(self, file: IO[Any] | None = None) -> None:
        message = one_line(printable(self.format_message()))
        if not message.endswith((".", "!", "?")):
            message += "."
        hint = f" See '{self.ctx.command_path} --help'." if self.ctx is not None else ""
        click.echo(f"Error: {message}{hint}", err=True)


class OneLineCommand(click.Command):
    """A click command whose usage errors (missing argument, bad value) take one line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except BadUsage:
            raise
        except click.UsageError as exc:
            raise BadUsage(exc.format_message(), ctx) from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush can't fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def guarded(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Give a command the CLI's exit conventions.

    Ctrl+C exits 130 without a traceback; a closed stdout (``ssehub listen … |
    head``) ends the command quietly with 0, as the reader asked for no more;
    any other unexpected exception becomes a one-line :class:`Failure` unless
    ``SSEHUB_DEBUG`` is set.
    """

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return function(*args, **kwargs)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            _silence_stdout()
            raise click.exceptions.Exit(EXIT_OK) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("SSEHUB_DEBUG"):
                raise
            raise Failure(f"unexpected {type(exc).__name__}: {exc}") from exc

    return wrapper


class _Console(Console):
    """rich's console, but a closed pipe raises :class:`BrokenPipeError` for :func:`guarded`."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def terminal_console(*, stderr: bool = False) -> Console:
    """A rich console for stdout (or stderr): colour on a terminal only, no wrapping, no markup."""
    return _Console(
        stderr=stderr,
        soft_wrap=True,
        highlight=False,
        markup=False,
        emoji=False,
    )


def stream_url(text: str) -> str:
    """Check an http(s) URL given on the command line; ``host:port/path`` gets ``http://``.

    As with curl, a URL without a scheme is taken as ``http://``.  Raises
    :class:`BadUsage` for another scheme or a URL without a host.
    """
    candidate = text.strip()
    if "://" not in candidate:
        candidate = f"http://{candidate}"
    try:
        url = httpx.URL(candidate)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise BadUsage(f"{text!r} is not a URL: {exc}") from None
    if url.scheme not in {"http", "https"}:
        raise BadUsage(f"{text!r}: only http:// and https:// URLs are supported")
    if not url.host:
        raise BadUsage(f"{text!r} has no host (example: http://localhost:8004/topics/news)")
    return str(url)


def parse_headers(values: Iterable[str]) -> dict[str, str]:
    """``Name: value`` strings, as given to ``--header``, as a dict (a later one wins).

    Raises :class:`BadUsage` for a missing colon, a name that is not an HTTP
    token, or a CR, LF or NUL anywhere.
    """
    headers: dict[str, str] = {}
    for text in values:
        name, colon, value = text.partition(":")
        name = name.strip()
        if not colon or _TOKEN.fullmatch(name) is None:
            raise BadUsage(f"--header {text!r} is not 'Name: value'")
        if any(c in value for c in "\r\n\x00"):
            raise BadUsage(f"--header {name!r} has a CR, LF or NUL in its value")
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value.strip()
    return headers


def hub_error_message(status_code: int, body: bytes) -> str:
    """The hub's ``{"error": code, "message": text}`` body as one line, or a plain summary."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        code = payload.get("error")
        prefix = f"{code}: " if isinstance(code, str) and code else ""
        return printable(f"HTTP {status_code} {prefix}{payload['message']}")
    reason = httpx.codes.get_reason_phrase(status_code)
    return f"HTTP {status_code} {reason}".strip()
