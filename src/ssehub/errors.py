"""The whole ssehub exception tree.

Errors are split by who is at fault, as in h11: a *local* protocol error means
this program asked the encoder to write something the event stream format
forbids (an ``id`` with a newline); a *remote* protocol error means the peer
sent something illegal or unusable (an event stream line over the size bound);
a *hub* error means the hub refused an operation by its own policy (a malformed
topic, a reserved event type, a subscription while it shuts down) or could not
carry it out (the store is down); a *client* error is raised by
:mod:`ssehub.client`.  Third-party errors are translated once, at the adapter
that called them, and chained with ``from``; ``ssehub.server`` maps each hub
error to one HTTP answer in one table (``server/_errors.py``).

A ``Last-Event-ID`` the hub never issued is not an error: the hub answers it
in-band, with the reserved ``ssehub-reset`` event, so a stream always opens.

::

    SSEHubError
    ├── LocalProtocolError          we were asked to send something illegal
    │   └── EncodeError             a field can't be encoded without forging events
    ├── RemoteProtocolError         the peer sent something illegal or unusable
    │   └── EventTooLargeError      a line or event exceeded the parser's bound
    ├── HubError                    the hub refused or could not do an operation
    │   ├── InvalidTopicError       a topic name outside the allowed syntax
    │   ├── InvalidEventError       an event the hub won't publish (its type)
    │   ├── HubClosingError         the hub is draining: no new subscriptions
    │   ├── OversizedEventError     an event over the hub's size bound, as encoded
    │   ├── InvalidIdempotencyKeyError  an idempotency key outside the allowed syntax
    │   ├── IdempotencyConflictError    a key already used for a different event
    │   ├── InvalidRewindError      a since= / rewind= value outside the documented forms
    │   ├── BackendUnavailableError the store (SQLite, Redis) can't be reached
    │   │   └── StoreTimeoutError   the store did not answer in time: outcome unknown
    │   ├── QuotaExceededError      a store quota (distinct topics, stored bytes) is full
    │   └── AccessError             access control refused the request
    │       ├── MissingTokenError   a token is required and none was sent (401)
    │       ├── InvalidTokenError   the token is malformed, forged, expired… (401)
    │       ├── TokenInQueryError   a token in the query string (never read: 400)
    │       └── InsufficientScopeError  the token does not grant this (403)
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
    "AccessError",
    "BackendUnavailableError",
    "BadStatusError",
    "ClientError",
    "ConnectError",
    "ContentTypeError",
    "EncodeError",
    "EventTooLargeError",
    "HubClosingError",
    "HubError",
    "IdempotencyConflictError",
    "InsufficientScopeError",
    "InvalidEventError",
    "InvalidIdempotencyKeyError",
    "InvalidRewindError",
    "InvalidTokenError",
    "InvalidTopicError",
    "LocalProtocolError",
    "MissingTokenError",
    "OversizedEventError",
    "QuotaExceededError",
    "ReadTimeoutError",
    "ReconnectExhaustedError",
    "RedirectError",
    "RemoteProtocolError",
    "SSEHubError",
    "StoreTimeoutError",
    "TokenInQueryError",
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


class InvalidEventError(HubError, ValueError):
    """An event the hub refuses to publish: its type has CR, LF or NUL, is too
    long, or is the hub's reserved ``ssehub-reset``.  Nothing is stored."""


class HubClosingError(HubError):
    """The hub is shutting down and takes no new subscriptions."""


class OversizedEventError(HubError, ValueError):
    """An event larger than the hub's ``max_event_bytes`` once encoded for the wire."""


class InvalidIdempotencyKeyError(HubError, ValueError):
    """An idempotency key that is not 1 to 128 visible ASCII characters (``!`` to ``~``)."""


class InvalidRewindError(HubError, ValueError):
    """A ``since=`` / ``rewind=`` value outside the documented forms (``hub/_rewind.py``)."""


class IdempotencyConflictError(HubError):
    """An idempotency key came back with a different topic, data or event type.

    The store keeps the first event published with the key; the new one is not
    stored.
    """


class BackendUnavailableError(HubError):
    """The history store can't be reached right now; the operation did nothing.

    (Except for the subclass :class:`StoreTimeoutError`, whose outcome is unknown.)
    """


class StoreTimeoutError(BackendUnavailableError):
    """A networked store did not answer in time: the operation's outcome is unknown.

    An append that timed out may still be stored, once (e.g. when a hung Redis
    wakes up).  Retry it with the same idempotency key to store it exactly once.
    """


class QuotaExceededError(HubError):
    """A store quota is full (distinct topics, or stored bytes); nothing was stored.

    ``kind`` is ``"topics"`` or ``"bytes"``.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class AccessError(HubError):
    """Access control refused the request (see ``ssehub.server._auth``)."""


class MissingTokenError(AccessError):
    """The operation needs a token and the request carried none."""


class InvalidTokenError(AccessError):
    """The token can't be used: malformed, forged, expired, not yet valid, wrong
    algorithm, issuer or audience, or too long.  The message says which."""


class TokenInQueryError(AccessError):
    """A token was sent in the query string; it is never read from there (it would
    land in access logs and browser history)."""


class InsufficientScopeError(AccessError):
    """A valid token (or an anonymous client) that is not granted the operation."""


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
