"""Value objects of the event stream: what is encoded and what is parsed."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "ServerSentEvent"]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One event to send.

    ``data`` may hold any text; CR, LF and CRLF in it become separate ``data:``
    lines, which the receiver joins back with LF.  ``data=None`` (the default)
    sends no ``data:`` line at all: the receiver then dispatches nothing, but
    still applies ``id`` and ``retry``.  That makes *control* events: a
    reconnection time (``ServerSentEvent(retry=3000)``) or a last event ID set
    without an event (``ServerSentEvent(id="42")``, which a browser takes at the
    blank line).  Any ``data`` string, ``""`` included, dispatches exactly one
    event.

    ``event`` and ``id`` may not contain CR or LF (``id`` not NUL either):
    :func:`encode` refuses them.  ``event=None`` sends no ``event:`` line (the
    receiver sees ``"message"``); ``id=None`` sends no ``id:`` line, while
    ``id=""`` sends ``id`` alone, which resets the receiver's last event ID.
    ``retry`` is the reconnection time in integer milliseconds.  ``comment`` is
    sent as ``:`` lines before the fields.
    """

    data: str | None = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One event dispatched by :class:`~ssehub.protocol.EventStreamParser`.

    Exactly what a browser's ``MessageEvent`` carries: ``event`` is the type
    (``"message"`` when the stream named none), ``data`` the joined data lines,
    and ``id`` the last event ID in effect at dispatch (``lastEventId``;
    ``""`` when there is none).  ``retry`` is the reconnection time, in
    milliseconds, in effect at dispatch (``None`` when the stream never set one).
    """

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None
