"""``GET`` and ``POST /.well-known/mercure``: the Mercure protocol over the hub.

Subscribe (``GET``): the matchers of the query (``_matchers``), the token
(``Authorization: Bearer``, the hub's configured cookie, or Mercure's
``mercureAuthorization`` / ``__Secure-mercure_access_token`` cookies) and the
last event id (``_cursors``) open one hub stream of the adapter topic whose
``accept`` test keeps an update when a matcher selects any of its topics and,
for a private update, the token's ``subscribe`` grant selects any of them —
live and on replay, re-checked with the token presented now.  The response
carries ``Last-Event-ID`` and ``Mercure-Last-Event-ID``; heartbeats, write
deadlines, the ``exp`` bound and every queue bound are the hub's; a passing
refusal (``503``) of a browser's ``EventSource`` comes back later, as on the
topic API (``stream_or_come_back``).

Publish (``POST``, ``application/x-www-form-urlencoded``): ``topic`` (one or
more: the first canonical), ``data``, ``id``, ``type``, ``retry``,
``private`` (present = private, whatever its value); unknown fields are
ignored.  The token must grant ``publish`` on every topic.  Answer ``200
text/plain`` with the update's id.  Refused with ``400``: no topic, a topic
``*`` or in the hub's own namespace, an ``id`` starting with ``#`` or equal to
``earliest``, ``type: mercure``, a non-digit ``retry``, control characters;
``413`` for a body over ``--max-body`` or over :data:`MAX_TOPICS` topics.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response

from ..errors import MissingTokenError
from ..hub import Hub, StoredEvent, TopicGrant
from ..server import (
    SSE_HEADERS,
    AccessPolicy,
    ApiError,
    ServerSettings,
    admit_stream,
    read_body,
    stream_or_come_back,
)
from ..server import Subscriber as Grant
from ._cursors import EARLIEST, requested_id, resolve_start
from ._matchers import HUB_PATH, Matcher, addresses_hub, check_text, parse_matchers
from ._subscriptions import SubscriptionBook
from ._updates import ADAPTER_TOPIC, Update, UpdateCodec, dump, hub_id

__all__ = ["MAX_TOPICS", "MERCURE_COOKIES", "MercureEndpoint"]

#: Cookies a Mercure client may carry its token in (0.x, then 1.0's recommended name).
MERCURE_COOKIES = ("mercureAuthorization", "__Secure-mercure_access_token")
#: Most ``topic`` fields one publish may carry.
MAX_TOPICS = 100
_MAX_FIELDS = 1000


def hub_url(conn: HTTPConnection) -> str:
    """The hub's own URL as this request reached it (the base of relative topics).

    Built from the scope's scheme and the ``Host`` header (no ``Request.url``,
    which a stream's request would keep for the stream's life).
    """
    scope = conn.scope
    host = conn.headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{HUB_PATH}"


class MercureEndpoint:
    """The Mercure hub endpoint, bound to one hub, its settings and access policy."""

    def __init__(
        self, hub: Hub, settings: ServerSettings, access: AccessPolicy, book: SubscriptionBook
    ) -> None:
        self.hub = hub
        self.settings = settings
        self.access = access
        self.book = book
        self.codec = UpdateCodec(lambda: hub.epoch)
        hub.adopt_topic(ADAPTER_TOPIC, self.codec.encode)
        #: Publisher-id lookups in history run one at a time (see ``_cursors``).
        self._scans = asyncio.Lock()
        self._rng = random.Random()
        #: Equal subscriptions share one test (the hub then runs it once per update).
        self._tests: weakref.WeakValueDictionary[object, Callable[[StoredEvent], bool]] = (
            weakref.WeakValueDictionary()
        )

    async def handle(self, request: Request) -> Response:
        """``GET`` subscribes, ``POST`` publishes."""
        if request.method == "POST":
            return await self.publish(request)
        return await self.subscribe(request)

    # -- tokens ------------------------------------------------------------------

    async def subscriber(self, conn: HTTPConnection) -> Grant:
        """The subscriber's grant (see ``AccessPolicy.subscriber``), Mercure's cookies too."""
        token, _ = self.access.token_of(conn)
        if token is None:
            for name in MERCURE_COOKIES:
                token = conn.cookies.get(name) or None
                if token is not None:
                    break
        verifier = self.access.verifier
        if token is None or verifier is None:
            if not self.access.anonymous_subscribe:
                raise MissingTokenError("subscribing needs a token (--no-anonymous-subscribe)")
            return Grant()
        claims = await verifier.verify(token)
        return Grant(claims.subscribe, claims.expires_at)

    # -- subscribe ---------------------------------------------------------------

    async def subscribe(self, request: Request) -> Response:
        base = hub_url(request)
        matchers = parse_matchers(request.query_params.multi_items(), base)
        if not matchers:
            raise ApiError(
                400, "missing_topic", "name at least one topic matcher: ?match=… or ?topic=…"
            )
        if request.method == "HEAD":
            return Response(headers={k.decode(): v.decode() for k, v in SSE_HEADERS})
        return await stream_or_come_back(
            request, lambda: self._open(request, matchers, base), self._rng
        )

    async def _open(self, request: Request, matchers: list[Matcher], base: str) -> Response:
        admit_stream(self.hub, self.settings)
        grant = await self.subscriber(request)
        requested = requested_id(request)
        if requested is not None:
            check_text(requested, "Last-Event-ID")
        start = await resolve_start(self.hub, requested, self._scans)
        stream = await self.hub.open(
            [ADAPTER_TOPIC],
            start.cursor,
            accept=self._shared_accept(matchers, grant.grant, base),
            expires_at=grant.expires_at,
        )
        headers = {"Last-Event-ID": start.echoed}
        if requested is not None or start.echoed == EARLIEST:
            headers["Mercure-Last-Event-ID"] = start.echoed
        return await self.book.stream(stream, matchers, grant, headers)

    def _shared_accept(
        self, matchers: list[Matcher], grant: TopicGrant, base: str
    ) -> Callable[[StoredEvent], bool]:
        """The test of these matchers and grant, shared with every stream that has the same."""
        key = (frozenset((m.match_type, m.match) for m in matchers), grant, base)
        test = self._tests.get(key)
        if test is None:
            test = self._tests[key] = self._accept(matchers, grant)
        return test

    def _accept(self, matchers: list[Matcher], grant: TopicGrant) -> Callable[[StoredEvent], bool]:
        """The stream's test of each update: called once per update per stream, so cheap.

        Exact matchers are one set (``isdisjoint`` on the update's topics); the
        others are tested one by one; a private update also needs the grant.
        """
        decode = self.codec.decode
        everything = any(m.match == "*" for m in matchers)
        exact = frozenset(m.match for m in matchers if m.match_type == "exact")
        others = tuple(m.test for m in matchers if m.match_type != "exact" and m.match != "*")
        granted_all = grant.everything
        allows = grant.allows

        def accept(event: StoredEvent) -> bool:
            update = decode(event)
            if update is None:
                return False
            topics = update.topics
            if not (
                everything
                or not exact.isdisjoint(topics)
                or any(test(t) for test in others for t in topics)
            ):
                return False
            return not update.private or granted_all or any(map(allows, topics))

        return accept

    # -- publish -----------------------------------------------------------------

    async def _form(self, request: Request) -> list[tuple[str, str]]:
        body = await read_body(request, self.settings.max_body_size)
        try:
            text = body.decode("utf-8")
            return parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=False,
                errors="strict",
                max_num_fields=_MAX_FIELDS,
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, "invalid_body", f"not a UTF-8 form body: {exc}") from exc

    async def publish(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/x-www-form-urlencoded", ""):
            raise ApiError(
                415, "unsupported_media_type", "publish with application/x-www-form-urlencoded"
            )
        form = await self._form(request)
        update = self._update(form, hub_url(request))
        await self.access.authorize_publish(request, update.topics)
        published = await self.hub.publish(
            ADAPTER_TOPIC, dump(update), private=update.private, adapter=True
        )
        update_id = update.id if update.id is not None else hub_id(self.hub.epoch, published.seq)
        return PlainTextResponse(update_id)

    def _update(self, form: list[tuple[str, str]], base: str) -> Update:
        topics: list[str] = []
        fields: dict[str, str] = {}
        private = False
        for name, value in form:
            if name == "topic":
                if len(topics) >= MAX_TOPICS:
                    raise ApiError(413, "too_many_topics", f"at most {MAX_TOPICS} topics")
                check_text(value, "a topic")
                if value == "*" or not value:
                    raise ApiError(400, "invalid_topic", "a topic may not be '*' or empty")
                if addresses_hub(value, base):
                    raise ApiError(
                        400, "reserved_topic", "topics under the hub's own path are the hub's"
                    )
                topics.append(value)
            elif name == "private":
                private = True
            elif name in ("data", "id", "type", "retry"):
                fields.setdefault(name, value)
        if not topics:
            raise ApiError(400, "missing_topic", "a publish needs at least one topic field")
        update_id = fields.get("id") or None
        if update_id is not None:
            check_text(update_id, "the id")
            if update_id.startswith("#") or update_id == EARLIEST:
                raise ApiError(400, "invalid_id", "an id may not start with '#' or be 'earliest'")
        event_type = fields.get("type") or None
        if event_type is not None:
            check_text(event_type, "the type")
            if event_type == "mercure":
                raise ApiError(400, "invalid_type", "the type 'mercure' is the hub's own")
        retry_text = fields.get("retry")
        retry = None
        if retry_text:
            if not (retry_text.isascii() and retry_text.isdigit()) or len(retry_text) > 10:
                raise ApiError(400, "invalid_retry", "retry must be ASCII digits")
            retry = int(retry_text)
        return Update(tuple(topics), fields.get("data", ""), update_id, event_type, retry, private)
