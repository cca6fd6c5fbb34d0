"""The whole ssehub exception tree.

Errors are split by who is at fault, as in h11: a *local* error means this
program asked ssehub to do something illegal (encode an ``id`` with a newline,
publish to a malformed topic); a *remote* error means the peer sent something
illegal or unusable (an event stream line over the size bound, a response with
the wrong ``Content-Type``).  Third-party errors are translated once, at the
adapter that called them, and chained with ``from``.

::

    SSEHubError
    ├── LocalProtocolError          we were asked to send something illegal
    │   └── EncodeError             a field can't be encoded without forging events
    ├── RemoteProtocolError         the peer sent something illegal or unusable
    │   └── EventTooLargeError      a line or event exceeded the parser's bound
    ├── HubError                    the hub refused or could not do an operation
    │   ├── InvalidTopicError       a topic name outside the allowed syntax
    │   ├── InvalidCursorError      a Last-Event-ID that this hub never issued
    │   └── BackendUnavailableError the store (SQLite, Redis) can't be reached
    └── ClientError                 raised by ssehub.client
        ├── ConnectError            the server could not be reached
        ├── ReadTimeoutError        no bytes (not even a heartbeat) within read_timeout
        ├── BadStatusError          a status the client won't retry (or retries ran out)
        ├── ContentTypeError        the response is not text/event-stream
        ├── RedirectError           a redirect loop, or more redirects than allowed
        └── ReconnectExhaustedError max attempts or max total time spent
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "BadStatusError",
    "ClientError",
    "ConnectError",
    "ContentTypeError",
    "EncodeError",
    "EventTooLargeError",
    "HubError",
    "InvalidCursorError",
    "InvalidTopicError",
    "LocalProtocolError",
    "ReadTimeoutError",
    "ReconnectExhaustedError",
    "RedirectError",
    "RemoteProtocolError",
    "SSEHubError",
]


class SSEHubError(Exception):
    """Base class of every error ssehub raises on purpose."""


class LocalProtocolError(SSEHubError):
    """This program asked ssehub to produce something the protocol forbids."""


class EncodeError(LocalProtocolError, ValueError):
    """A field can't be encoded as asked without changing the event's meaning.

    Raised for CR or LF in ``event`` or ``id``, NUL in ``id``, a ``retry`` that
    is not an ``int`` from 0 to 2**64 - 1, a field of the wrong type, and text
    that is not valid Unicode (a lone surrogate).  The encoder never
    "cleans" such input: that would silently turn one event into another.
    """


class RemoteProtocolError(SSEHubError):
    """The peer sent bytes we can't accept."""


class EventTooLargeError(RemoteProtocolError):
    """A line or a half-built event grew past the parser's ``max_event_size`` (characters)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"event stream line or event of {size} characters exceeds the limit of {limit}"
        )
        self.size = size
        self.limit = limit


class HubError(SSEHubError):
    """The hub refused an operation, or could not carry it out."""


class InvalidTopicError(HubError, ValueError):
    """A topic name outside the allowed syntax."""


class InvalidCursorError(HubError, ValueError):
    """A ``Last-Event-ID`` that is not a cursor this hub could have issued."""


class BackendUnavailableError(HubError):
    """The history store can't be reached right now; the operation did nothing."""


class ClientError(SSEHubError):
    """Base class of the errors raised by :mod:`ssehub.client`."""


class ConnectError(ClientError):
    """The server could not be reached."""


class ReadTimeoutError(ClientError):
    """No bytes arrived (not even a heartbeat comment) within ``read_timeout``."""


class BadStatusError(ClientError):
    """The server answered with a status the client does not retry."""

    def __init__(self, status_code: int, message: str | None = None) -> None:
        super().__init__(message or f"server answered HTTP {status_code}")
        self.status_code = status_code


class ContentTypeError(ClientError):
    """The response's ``Content-Type`` is not ``text/event-stream``."""

    def __init__(self, content_type: str) -> None:
        super().__init__(f"expected Content-Type text/event-stream, got {content_type!r}")
        self.content_type = content_type


class RedirectError(ClientError):
    """The server's redirects loop, or there are more of them than allowed; never retried."""


class ReconnectExhaustedError(ClientError):
    """The client gave up: its maximum attempts or total reconnect time ran out."""
