"""The hub app in process: ``HubApp`` with its lifespan entered, behind an httpx client.

For request/response routes only (publish, errors, ``/healthz``, ``/metrics``,
CORS): httpx's ``ASGITransport`` buffers a whole response body, so an endless
event stream must go through a real server (:func:`tests.support.processes.start_hub`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ssehub.server import HubApp, Plugin, ServerSettings

__all__ = ["BASE_URL", "app_client", "hub_settings"]

#: The base URL the in-process client sends to (never resolved: no socket is opened).
BASE_URL = "http://hub.test"


def hub_settings(**overrides: Any) -> ServerSettings:
    """Settings for an in-process hub: an in-memory store (a bare HubApp runs no demos)."""
    return ServerSettings(**{"store": "memory", **overrides})


@asynccontextmanager
async def app_client(
    settings: ServerSettings | None = None, *, plugins: Sequence[Plugin] = ()
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired to a fresh ``HubApp`` (with ``plugins``) whose lifespan runs."""
    app = HubApp(settings or hub_settings(), plugins=plugins)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE_URL) as client,
    ):
        yield client
