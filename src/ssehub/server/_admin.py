"""The admin surface on a port of its own (``--admin-port``), bound to loopback.

An alternative to admin tokens: ``ssehub serve --admin-port 9004`` serves
``/metrics``, the stats feed (``GET /topics/ssehub/stats``) and the plug-ins'
admin routes (the demos' dashboard) on ``127.0.0.1:9004`` only, to whoever can
reach that port — the machine's own users, an SSH tunnel, a sidecar scraper —
with no token.  The main port then serves none of it (``404``; see ``_auth``).

Conventions:

* The admin app shares its :class:`~ssehub.server.HubApp`'s hub, access policy
  and routes; it runs no lifespan of its own (the hub app's runs on the main
  server).
* Every request must name a loopback ``Host`` (``localhost``, ``127.0.0.1``,
  ``::1``), so a DNS-rebinding page can't read it; it is then marked with
  :data:`._auth.ADMIN_SCOPE`, which is what lets it through ``authorize_admin``
  and gives its stream of the stats feed the admin grant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from ._auth import ADMIN_SCOPE, LOOPBACK_NAMES, host_of
from ._errors import error_response, exception_handlers

if TYPE_CHECKING:
    from ._app import HubApp

__all__ = ["ADMIN_HOST", "AdminApp"]

#: The one interface the admin port is bound to.
ADMIN_HOST = "127.0.0.1"


class AdminApp:
    """The ASGI app of the admin port: the admin routes of one :class:`HubApp`."""

    def __init__(self, hub_app: HubApp) -> None:
        self.hub_app = hub_app
        self.app = Starlette(routes=hub_app.admin_routes(), exception_handlers=exception_handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the hub app's lifespan runs on the main server
            await self.app(scope, receive, send)
            return
        host = Request(scope).headers.get("host")
        if host is None or host_of(host) not in LOOPBACK_NAMES:
            response = error_response(
                400, "host_not_allowed", "the admin port serves only Host: localhost/127.0.0.1"
            )
            await response(scope, receive, send)
            return
        scope[ADMIN_SCOPE] = True
        await self.app(scope, receive, send)
