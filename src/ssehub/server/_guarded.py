"""A response the hub does not write itself, sent under the hub's write deadline.

:class:`GuardedResponse` wraps any Starlette response (a plain answer, a
``StreamingResponse`` over a plug-in's generator — Durable Streams' catch-up,
``live=long-poll`` and ``live=sse`` reads) and times each of its ASGI
``send`` calls with a :class:`~ssehub.hub.WriteGuard` from
:meth:`Hub.write_guard`, which the hub's ticker checks like its own streams'
writes (``--write-timeout``; counted in ``ssehub_write_timeouts_total``).

A send blocked longer than that (a client that stopped reading, its TCP
window shut) is abandoned: the connection is reset through
``scope["extensions"]["ssehub.abort"]`` (``ssehub serve``, HTTP/1.1 and
HTTP/2), which frees the kernel and transport buffers it held; under a server
without the extension (a ``HubApp`` mounted under plain uvicorn) the task that
runs the response is cancelled, so its generator, its admission slot and
whatever it held are freed, and the server closes the connection as it sees
fit.  Either way the response then ends quietly.  A send after the abort
raises inside the wrapped response, so a generator is never pulled for a
connection that is gone; a ``StreamingResponse``'s generator is closed as soon
as the response ends.

Memory per response stays what the wrapped response holds: a streaming
response pulls its next chunk only after the previous send returned, so a
stuck reader pins at most one chunk besides the socket buffers.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from starlette.types import Receive, Scope, Send

from ._stream import ABORT_EXTENSION
from ._wrapped import WrappedResponse

__all__ = ["GuardedResponse"]


class _Abandoned(Exception):
    """Raised by a guarded send once the connection was aborted: nothing more may be written."""


class GuardedResponse(WrappedResponse):
    """Send ``response`` with every write under ``hub``'s write deadline.

    Shares the wrapped response's header list (when it has one): ``headers`` set on
    either are sent.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        abort = (scope.get("extensions") or {}).get(ABORT_EXTENSION)
        with self._hub.write_guard() as guard:

            async def guarded_send(message: MutableMapping[str, Any]) -> None:
                if guard.aborted:
                    raise _Abandoned
                try:
                    await guard.timed(send, message)
                except OSError:
                    if guard.aborted:  # the reset made the pending write fail
                        raise _Abandoned from None
                    raise
                if guard.aborted:
                    raise _Abandoned

            guard.attach(abort if callable(abort) else None)
            try:
                await self._response(scope, receive, guarded_send)
            except asyncio.CancelledError:
                if not guard.absorb_cancel():
                    raise
            except _Abandoned:
                pass
            finally:
                # A generator left mid-stream is closed now (its ``finally`` runs), not
                # whenever the garbage collector gets to it.
                aclose = getattr(getattr(self._response, "body_iterator", None), "aclose", None)
                if aclose is not None:
                    await aclose()
