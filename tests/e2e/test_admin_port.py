"""``ssehub serve --admin-port``: the admin surface on its own loopback port (issue 11).

``/metrics``, the dashboard and its stats feed move to ``127.0.0.1:ADMIN``,
served there with no token; the main port answers ``404`` for all of them,
even to an admin token, and keeps serving the API.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.support.processes import HubProcess, free_port, start_hub
from tests.support.sse import open_stream
from tests.support.tokens import SECRET, mint


@pytest.fixture(scope="module")
def hub_with_admin_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    admin_port = free_port()
    args = ["--store", "memory", "--no-ticker", "--jwt-key", SECRET]
    args += ["--admin-port", str(admin_port)]
    env = {"SSEHUB_STATS_INTERVAL": "0.2"}
    with start_hub(args, env=env, log_dir=tmp_path_factory.mktemp("admin")) as hub:
        yield hub


def _admin_url(hub: HubProcess) -> str:
    return f"http://127.0.0.1:{hub.args[hub.args.index('--admin-port') + 1]}"


def test_the_main_port_serves_no_admin_surface_even_to_an_admin_token(
    hub_with_admin_port: HubProcess,
) -> None:
    hub = hub_with_admin_port
    admin = {"Authorization": f"Bearer {mint(subscribe=['*'])}"}
    for path in ("/metrics", "/dashboard", "/dashboard/recent", "/topics/ssehub/stats"):
        answer = httpx.get(f"{hub.url}{path}", headers=admin, timeout=10)
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "not_found", path
    # The API is still there.
    publisher = {"Authorization": f"Bearer {mint(publish=['news'])}"}
    answer = httpx.post(f"{hub.url}/topics/news", content="hi", headers=publisher)
    assert answer.status_code == 201


def test_the_admin_port_serves_metrics_dashboard_and_stats_feed_without_a_token(
    hub_with_admin_port: HubProcess,
) -> None:
    admin = _admin_url(hub_with_admin_port)
    metrics = httpx.get(f"{admin}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "ssehub_open_streams" in metrics.text
    assert httpx.get(f"{admin}/dashboard", timeout=10).status_code == 200
    assert httpx.get(f"{admin}/static/dashboard.js", timeout=10).status_code == 200
    assert httpx.get(f"{admin}/dashboard/recent", timeout=10).json()["topic"] == "ssehub/stats"
    with open_stream(f"{admin}/topics/ssehub/stats") as stream:
        sample = stream.read_events(1, timeout=20)[0]
    assert sample.event == "stats"  # private (the feed names topics), yet served here
    # Only the stats feed: the admin port is no second way into the API.
    assert httpx.get(f"{admin}/topics/news", timeout=10).status_code == 404
    assert httpx.post(f"{admin}/topics/news", content="x", timeout=10).status_code in (404, 405)


def test_the_admin_port_listens_on_loopback_and_answers_only_loopback_names(
    hub_with_admin_port: HubProcess,
) -> None:
    hub = hub_with_admin_port
    admin = _admin_url(hub)
    port = int(admin.rsplit(":", 1)[1])
    listening = [
        c.laddr
        for c in psutil.Process(hub.proc.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]
    assert [address.ip for address in listening] == ["127.0.0.1"]
    rebound = httpx.get(f"{admin}/metrics", headers={"Host": "evil.example"}, timeout=10)
    assert rebound.status_code == 400
    assert rebound.json()["error"] == "host_not_allowed"
