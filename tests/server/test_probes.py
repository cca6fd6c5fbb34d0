"""``/livez`` and ``/readyz`` beside ``/healthz`` (issue 12): probes for orchestrators.

``/livez`` fails only when the process can't answer (it never touches the
store); ``/readyz`` is 503 while the store or the live feed is unusable and
while draining.  A Redis outage: ``tests/e2e/test_probes_redis.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from ssehub.server import HubApp
from tests.support.apps import BASE_URL, hub_settings


@asynccontextmanager
async def served(app: HubApp) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE_URL) as client,
    ):
        yield client


async def test_both_probes_answer_200_on_a_serving_hub(tmp_path: Path) -> None:
    app = HubApp(hub_settings(store=f"sqlite:{tmp_path / 'hub.db'}"))
    async with served(app) as client:
        live, ready = await client.get("/livez"), await client.get("/readyz")
    assert (live.status_code, live.json()["status"]) == (200, "alive")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    assert live.json()["pid"] == ready.json()["pid"]


async def test_while_draining_readyz_refuses_and_livez_answers() -> None:
    app = HubApp(hub_settings())
    async with served(app) as client:
        app.hub.drain()
        live, ready = await client.get("/livez"), await client.get("/readyz")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {"status": "not_ready", "pid": live.json()["pid"], "message": "draining"}


async def test_an_unusable_store_fails_readyz_but_never_livez(tmp_path: Path) -> None:
    app = HubApp(hub_settings(store=f"sqlite:{tmp_path / 'hub.db'}"))
    async with served(app) as client:
        await app.hub.backend.aclose()  # the store is gone; the process is fine
        live, ready = await client.get("/livez"), await client.get("/readyz")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["message"].startswith("store unreachable")
