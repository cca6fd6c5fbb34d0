"""Store quotas over HTTP: a refusal is 507 with a JSON body, from the one error table.

Issue 11 (quotas).  The per-store behaviour is in ``tests/hub/test_store_quotas.py``.
"""

from __future__ import annotations

import httpx

from ssehub.hub import Retention
from tests.support.apps import app_client, hub_settings


async def _head(client: httpx.AsyncClient) -> int:
    return int((await client.get("/healthz")).json()["head"])


async def test_a_new_topic_past_the_topic_quota_is_507_and_other_topics_keep_publishing() -> None:
    settings = hub_settings(retention=Retention(max_topics=1))
    async with app_client(settings) as client:
        assert (await client.post("/topics/a", json={"data": "1"})).status_code == 201
        head = await _head(client)
        refused = await client.post("/topics/b", json={"data": "2"})
        assert refused.status_code == 507
        assert refused.headers["content-type"] == "application/json"
        body = refused.json()
        assert body["error"] == "quota_exceeded"
        assert "1 topics" in body["message"]
        assert await _head(client) == head
        assert (await client.post("/topics/a", json={"data": "3"})).status_code == 201


async def test_a_publish_past_the_byte_quota_is_507_and_nothing_is_stored() -> None:
    settings = hub_settings(retention=Retention(max_bytes=8))
    async with app_client(settings) as client:
        assert (await client.post("/topics/a", content=b"12345678")).status_code == 201
        head = await _head(client)
        refused = await client.post("/topics/a", content=b"9")
        assert refused.status_code == 507
        assert refused.json()["error"] == "quota_exceeded"
        assert "8 bytes" in refused.json()["message"]
        assert await _head(client) == head
