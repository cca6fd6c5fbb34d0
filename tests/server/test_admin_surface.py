"""The admin surface never lists a topic that carried a private event.

Issue 11 (access control): ``/metrics`` and the dashboard's stats feed name topics.
"""

from __future__ import annotations

import json

from ssehub.demos import DemosPlugin
from ssehub.demos._dashboard import STATS_TOPIC, StatsFeed
from ssehub.hub import ALL_TOPICS
from ssehub.server import ADMIN_TOPIC
from tests.support.apps import app_client, hub_settings
from tests.support.hubs import open_hub
from tests.support.tokens import SECRET, mint


async def test_metrics_list_public_topics_and_never_private_ones() -> None:
    publisher = {"Authorization": f"Bearer {mint(publish=['*'])}"}
    admin = {"Authorization": f"Bearer {mint(subscribe=[ADMIN_TOPIC])}"}
    async with app_client(hub_settings(jwt_key=SECRET)) as client:
        for body, topic in (
            ({"data": "x"}, "news"),
            ({"data": "x", "private": True}, "secret/x"),
            ({"data": "x"}, "mixed"),
            ({"data": "x", "private": True}, "mixed"),
        ):
            answer = await client.post(f"/topics/{topic}", json=body, headers=publisher)
            assert answer.status_code == 201
        metrics = (await client.get("/metrics", headers=admin)).text
    assert 'topic="news"' in metrics
    assert "secret/x" not in metrics
    assert 'topic="mixed"' not in metrics


async def test_the_stats_feed_is_private_and_lists_no_private_topic() -> None:
    async with open_hub() as hub:
        feed = StatsFeed(hub, private=True)
        hub.add_observer(feed.observe)
        watcher = await hub.open([STATS_TOPIC], grant=ALL_TOPICS)
        secret = await hub.open(["secret/x"])
        anonymous = await hub.open([STATS_TOPIC])
        await hub.publish("news", "x")
        await hub.publish("secret/x", "x", private=True)
        assert await feed.tick()
        stored = (await hub.read([STATS_TOPIC], 0, 10)).events
        assert [e.private for e in stored] == [True]
        names = [t["topic"] for t in json.loads(stored[0].data)["topics"]]
        assert names == ["news"]
        assert watcher.subscription.queued == 1  # granted: the sample is queued
        assert anonymous.subscription.queued == 0  # anonymous: it never is
        for stream in (watcher, secret, anonymous):
            stream.close("end")


async def test_the_dashboard_samples_need_an_admin_token_when_a_key_is_set() -> None:
    settings = hub_settings(jwt_key=SECRET)
    import httpx

    from ssehub.server import HubApp

    app = HubApp(settings, plugins=[DemosPlugin()])
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub") as client,
    ):
        assert (await client.get("/dashboard/recent")).status_code == 401
        admin = {"Authorization": f"Bearer {mint(subscribe=[ADMIN_TOPIC])}"}
        assert (await client.get("/dashboard/recent", headers=admin)).status_code == 200
