"""The Mercure protocol, as a thin adapter over the hub (a plug-in).

``HubApp(settings, plugins=[MercurePlugin()])`` (what ``ssehub serve`` does
unless ``--no-mercure``) serves a Mercure hub — both dialects deployed today
(1.0 / draft-08 and 0.x / draft-07) — beside the hub's own API:

* ``GET /.well-known/mercure`` subscribes, ``POST`` publishes (``_endpoint``);
* ``GET /.well-known/mercure/subscriptions[/…]`` lists active subscriptions
  (``_subscriptions``, with ``--mercure-subscriptions``);
* ``GET /.well-known/oauth-protected-resource/.well-known/mercure`` is the
  protected-resource metadata (RFC 9728).

Every update is one hub event on the reserved topic ``ssehub/mercure``
(``_updates``), so Mercure gets the hub's exact resume, durable history, every
store and several nodes on one Redis; tokens, grants and private events are
the hub's access control (``ssehub.server``).  Depends on ``ssehub.server``,
never the reverse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..hub import Hub
from ..server import MERCURE_DETAIL_TYPE, AccessPolicy, ServerSettings, StreamRoute
from ._endpoint import MERCURE_COOKIES, MercureEndpoint, hub_url
from ._matchers import HUB_PATH
from ._subscriptions import SUBSCRIPTIONS_PATH, SubscriptionBook
from ._updates import ADAPTER_TOPIC, Update

__all__ = ["ADAPTER_TOPIC", "HUB_PATH", "MercureEndpoint", "MercurePlugin", "Update"]

METADATA_PATH = "/.well-known/oauth-protected-resource" + HUB_PATH


class MercurePlugin:
    """The Mercure hub as a plug-in of ``HubApp`` (see the module docstring)."""

    def __init__(self, *, subscriptions: bool | None = None) -> None:
        #: ``None``: as ``ServerSettings.mercure_subscriptions`` says.
        self.subscriptions = subscriptions
        self.endpoint: MercureEndpoint | None = None

    def routes(self, hub: Hub, settings: ServerSettings) -> Sequence[BaseRoute]:
        access = AccessPolicy(settings)
        enabled = (
            settings.mercure_subscriptions if self.subscriptions is None else self.subscriptions
        )
        book = SubscriptionBook(hub, access, enabled=enabled)
        endpoint = self.endpoint = MercureEndpoint(hub, settings, access, book)

        async def metadata(request: Request) -> Response:
            body: dict[str, object] = {
                "resource": hub_url(request),
                "authorization_details_types_supported": [MERCURE_DETAIL_TYPE],
                "bearer_methods_supported": ["header"],
                "mercure_cookie": MERCURE_COOKIES[1],
                "mercure_matcher_types_supported": ["exact", "urlpattern"],
            }
            if settings.jwt_issuer:
                body["authorization_servers"] = [settings.jwt_issuer]
            if enabled:
                body["mercure_subscriptions"] = True
            return JSONResponse(body)

        return [
            StreamRoute(HUB_PATH, endpoint.handle, methods=["GET", "POST"]),
            Route(SUBSCRIPTIONS_PATH, book.api, methods=["GET"]),
            Route(SUBSCRIPTIONS_PATH + "/{rest:path}", book.api, methods=["GET"]),
            Route(METADATA_PATH, metadata, methods=["GET"]),
        ]

    @asynccontextmanager
    async def lifespan(self, hub: Hub, settings: ServerSettings) -> AsyncIterator[None]:
        yield
