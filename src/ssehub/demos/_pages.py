"""The demo pages: static HTML from the ``ssehub.web`` package, at friendly URLs.

Each page is a plain HTML file whose scripts and styles are separate files
under ``/static/`` (relative URLs, so the hub can be mounted under a prefix).
Pages are sent with a Content-Security-Policy that allows nothing but this
origin: no CDN, no inline script, no external font.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = ["PAGES", "page_routes"]

#: URL path -> file in ``ssehub/web``.
PAGES = {
    "/test.html": "test.html",
    "/chat": "chat.html",
    "/ticker": "ticker.html",
    "/logs": "logs.html",
    "/dashboard": "dashboard.html",
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'self'"
)

PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def page(name: str) -> Response:
    """The page ``name`` of ``ssehub/web`` as an HTML response with the page headers."""
    text = resources.files("ssehub.web").joinpath(name).read_text("utf-8")
    return HTMLResponse(text, headers=PAGE_HEADERS)


def page_routes(paths: frozenset[str] | None = None) -> list[BaseRoute]:
    """Routes for the pages at ``paths`` (every page of :data:`PAGES` by default)."""
    routes: list[BaseRoute] = []
    for path, name in PAGES.items():
        if paths is not None and path not in paths:
            continue

        async def endpoint(request: Request, name: str = name) -> Response:
            return page(name)

        routes.append(Route(path, endpoint, methods=["GET"]))
    return routes
