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
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "BadUsage",
    "Failure",
    "OneLineCommand",
    "guarded",
    "hub_error_message",
    "one_line",
    "parse_headers",
    "stream_url",
    "terminal_console",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_P = ParamSpec("_P")
_R = TypeVar("_R")

# RFC 9110 token characters: what a header field name may hold.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


class Failure(click.ClickException):
    """A run-time failure: ``Error: <message>`` on one line, exit code 1."""

    exit_code = EXIT_FAILURE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {one_line(self.format_message())}", err=True)


class BadUsage(click.UsageError):
    """Bad arguments or input: ``Error: <message> See '… --help'.`` on one line, exit code 2."""

    def show(self, file: IO[Any] | None = None) -> None:
        message = one_line(self.format_message())
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
        return f"HTTP {status_code} {prefix}{payload['message']}"
    reason = httpx.codes.get_reason_phrase(status_code)
    return f"HTTP {status_code} {reason}".strip()
