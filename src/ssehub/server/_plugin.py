"""The plug-in seam of :class:`~ssehub.server.HubApp`: optional parts are opted into.

A plug-in (Mercure's ``WithDemo()`` is the model) is anything with two
methods, both given the app's hub and settings:

* ``routes(hub, settings)`` — Starlette routes mounted beside the hub's own;
  they are matched after the hub's API routes and before its ``GET /`` index,
  so a plug-in may answer ``/`` but never shadows ``/topics/…``.  A route
  whose ``GET`` streams is a :class:`~ssehub.server.StreamRoute`: it is then
  served like the hub's own streams (fewer frames held per open stream).
* ``lifespan(hub, settings)`` — an async context manager entered after the hub
  started and exited before it closes (background tasks live here).

A plug-in may also have ``admin_routes(hub, settings)``: routes of the admin
surface (they reveal topic names or counters; the demos' dashboard).  They are
served beside the others, or, with ``--admin-port``, on the admin port only.

``HubApp(settings, plugins=[...])`` installs them in order; without plug-ins a
mounted hub serves its API and nothing else.  ``ssehub serve`` installs the
demos (:mod:`ssehub.demos`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute

from ..hub import Hub

if TYPE_CHECKING:
    from ._settings import ServerSettings

__all__ = ["Plugin", "plugin_admin_routes"]


class Plugin(Protocol):
    """An optional part of a hub app: routes and a lifespan."""

    def routes(self, hub: Hub, settings: ServerSettings) -> Sequence[BaseRoute]:
        """The plug-in's routes (called once, when the app is built)."""
        ...

    def lifespan(self, hub: Hub, settings: ServerSettings) -> AbstractAsyncContextManager[None]:
        """Entered once the hub started; exited before the hub closes."""
        ...


def plugin_admin_routes(
    plugins: Sequence[Plugin], hub: Hub, settings: ServerSettings
) -> list[BaseRoute]:
    """The admin routes of ``plugins`` (those that have ``admin_routes``), in order."""
    routes: list[BaseRoute] = []
    for plugin in plugins:
        admin_routes = getattr(plugin, "admin_routes", None)
        if admin_routes is not None:
            routes.extend(admin_routes(hub, settings))
    return routes
