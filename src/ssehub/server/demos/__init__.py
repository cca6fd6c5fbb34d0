"""The seed's demos as pages and publishers: test page, chat, ticker, log tail, dashboard.

``demo_routes`` gives the routes; ``demo_tasks`` runs the background publishers
(ticker, log tailers, dashboard feed) for as long as the hub runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.routing import BaseRoute

from ...hub import Hub
from .._settings import Settings

__all__ = ["demo_routes", "demo_tasks"]


def demo_routes(hub: Hub, settings: Settings) -> list[BaseRoute]:
    """The demo pages and their streams."""
    return []


@asynccontextmanager
async def demo_tasks(hub: Hub, settings: Settings) -> AsyncIterator[None]:
    """Run the demos' background publishers while the block runs."""
    yield
