"""Active subscriptions: their events, and the API that lists them.

With ``--mercure-subscriptions`` (off by default, as in Mercure), every
matcher of every Mercure stream is an active subscription, announced when the
stream opens and when it ends by a private update of type ``mercure`` on
``/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}``
(``{match}`` and ``{subscriber}`` percent-encoded once; the subscriber is a
random ``urn:uuid:`` per connection).  The document is the spec's: ``id``,
``type: subscription``, ``match_type``, ``match``, ``subscriber``, ``active``
(and ``topic``, the draft-07 name of ``match``).  A 0.x ``topic=`` URI
template reports ``match_type: template``.

These updates go through the hub like any other, so every node and every
stream sees them.  The API (``GET /.well-known/mercure/subscriptions[/{match_type}
[/{match}[/{subscriber}]]]``, ``application/json``, a ``Link: rel="mercure"``
header carrying the ``last-event-id`` cursor) lists the subscriptions of the
process that answers; a client keeps its list current with the events.  It
needs a token whose ``subscribe`` grant selects the request's path (no key:
loopback binds only).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import AccessError, HubError, InsufficientScopeError, MissingTokenError
from ..hub import Hub, Stream
from ..server import AccessPolicy, ApiError, HubStreamResponse
from ..server import Subscriber as Grant
from ._matchers import HUB_PATH, Matcher
from ._updates import ADAPTER_TOPIC, Update, dump, hub_id

__all__ = ["SUBSCRIPTIONS_PATH", "SubscriptionBook"]

logger = logging.getLogger("ssehub.mercure")

SUBSCRIPTIONS_PATH = HUB_PATH + "/subscriptions"


def _document(matcher: Matcher, subscriber: str, active: bool) -> dict[str, Any]:
    topic = (
        f"{SUBSCRIPTIONS_PATH}/{matcher.match_type}/{quote(matcher.match, safe='')}"
        f"/{quote(subscriber, safe='')}"
    )
    return {
        "id": topic,
        "type": "subscription",
        "match_type": matcher.match_type,
        "match": matcher.match,
        "topic": matcher.match,
        "subscriber": subscriber,
        "active": active,
    }


class _AnnouncedStream(HubStreamResponse):
    """A hub stream whose end is announced (``active: false``) once it is over."""

    def __init__(
        self, stream: Stream, headers: Mapping[str, str], book: SubscriptionBook, key: str
    ) -> None:
        super().__init__(stream, headers=headers)
        self._book = book
        self._key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._book.leave(self._key)


class SubscriptionBook:
    """This process's active subscriptions; announces them when ``enabled``."""

    def __init__(self, hub: Hub, access: AccessPolicy, *, enabled: bool) -> None:
        self.hub = hub
        self.access = access
        self.enabled = enabled
        self._active: dict[str, list[Matcher]] = {}

    async def _announce(self, key: str, matchers: list[Matcher], active: bool) -> None:
        for matcher in matchers:
            doc = _document(matcher, key, active)
            update = Update((doc["id"],), json.dumps(doc), None, "mercure", None, True)
            try:
                await self.hub.publish(ADAPTER_TOPIC, dump(update), private=True, adapter=True)
            except HubError as exc:
                logger.warning("could not announce a subscription: %s", exc)
                return

    async def stream(
        self, stream: Stream, matchers: list[Matcher], grant: Grant, headers: Mapping[str, str]
    ) -> Response:
        """The response of a subscribe request (announced when enabled)."""
        if not self.enabled:
            return HubStreamResponse(stream, headers=headers)
        key = f"urn:uuid:{uuid.uuid4()}"
        self._active[key] = matchers
        await self._announce(key, matchers, True)
        return _AnnouncedStream(stream, headers, self, key)

    async def leave(self, key: str) -> None:
        matchers = self._active.pop(key, None)
        if matchers is not None:
            await self._announce(key, matchers, False)

    # -- the API -------------------------------------------------------------------

    async def _authorize(self, request: Request, path: str) -> None:
        verifier = self.access.verifier
        if verifier is None:
            if self.access.loopback:
                return
            raise AccessError("the subscriptions API needs a configured key and a token")
        token, _ = self.access.token_of(request)
        if token is None:
            raise MissingTokenError("the subscriptions API needs a token")
        claims = await verifier.verify(token)
        if not claims.subscribe.allows(path):
            raise InsufficientScopeError("the token does not grant subscribe on this path")

    async def api(self, request: Request) -> Response:
        """``GET /.well-known/mercure/subscriptions[/…]``."""
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        if not self.enabled:
            raise ApiError(404, "not_found", "start the hub with --mercure-subscriptions")
        await self._authorize(request, path)
        rest = path[len(SUBSCRIPTIONS_PATH) :].strip("/")
        parts = [unquote(p) for p in rest.split("/")] if rest else []
        if len(parts) > 3:
            raise ApiError(404, "not_found", "no such subscription resource")
        docs = [_document(m, key, True) for key, matchers in self._active.items() for m in matchers]
        if parts:
            docs = [d for d in docs if d["match_type"] == parts[0]]
        if len(parts) > 1:
            docs = [d for d in docs if d["match"] == parts[1]]
        head = await self.hub.head()
        hub_url = f"{request.url.scheme}://{request.url.netloc}{HUB_PATH}"
        headers = {
            "Link": f'<{hub_url}>; rel="mercure"; last-event-id="{hub_id(self.hub.epoch, head)}"; '
            'type="mercure"; content-type="application/json"',
            "Cache-Control": "must-revalidate",
        }
        if len(parts) == 3:
            found = [d for d in docs if d["subscriber"] == parts[2]]
            if not found:
                raise ApiError(404, "not_found", "no such active subscription")
            return JSONResponse(found[0], headers=headers)
        body = {"id": path, "type": "subscriptions", "subscriptions": docs}
        return JSONResponse(body, headers=headers)
