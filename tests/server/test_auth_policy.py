"""Who may publish and subscribe: safe defaults, Host, Origin (CSRF), browser forms.

Issue 11 (access control).  In process: these are request/response answers.
"""

from __future__ import annotations

import httpx
import pytest

from ssehub.server import ServerSettings
from ssehub.server._auth import AccessPolicy
from ssehub.server._run import served_settings
from tests.support.apps import BASE_URL, app_client, hub_settings
from tests.support.tokens import SECRET, mint

ORIGIN = "https://app.example"


async def _head(client: httpx.AsyncClient) -> int:
    return int((await client.get("/healthz")).json()["head"])


async def test_with_no_key_on_loopback_curl_d_still_publishes() -> None:
    async with app_client() as client:
        answer = await client.post(
            "/topics/t",
            content=b"hello",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 201


async def test_with_no_key_beyond_loopback_publishing_is_refused_with_the_way_out() -> None:
    async with app_client(hub_settings(host="0.0.0.0")) as client:
        answer = await client.post("/topics/t", content=b"hello")
        assert answer.status_code == 403
        message = answer.json()["message"]
        assert "--jwt-key" in message
        assert "--allow-anonymous-publish" in message
        assert await _head(client) == 0
    async with app_client(hub_settings(host="0.0.0.0", allow_anonymous_publish=True)) as client:
        assert (await client.post("/topics/t", content=b"hello")).status_code == 201


def test_the_start_up_log_says_who_may_publish() -> None:
    refused = AccessPolicy(ServerSettings(host="0.0.0.0")).startup_notes()
    assert "publishing is refused" in refused[0]
    keyed = AccessPolicy(ServerSettings(host="0.0.0.0", jwt_key=SECRET)).startup_notes()
    assert "every publish needs a token" in keyed[0]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},  # a foreign page's fetch / no-cors POST
        {"Origin": "null"},  # a sandboxed frame or a data: URL
        {"Origin": ORIGIN, "Sec-Fetch-Mode": "navigate"},  # a <form> submission
    ],
)
async def test_a_foreign_page_or_a_form_cannot_publish_to_a_loopback_hub(
    headers: dict[str, str],
) -> None:
    async with app_client(hub_settings(cors_origins=(ORIGIN,))) as client:
        answer = await client.post(
            "/topics/t", content=b"x", headers={**headers, "Content-Type": "text/plain"}
        )
        assert answer.status_code == 403
        assert answer.json()["error"] in ("origin_not_allowed", "form_refused")
        assert await _head(client) == 0


async def test_an_allowed_or_same_origin_page_publishes() -> None:
    async with app_client(hub_settings(cors_origins=(ORIGIN,))) as client:
        for origin in (ORIGIN, BASE_URL):  # listed; the hub's own origin
            answer = await client.post(
                "/topics/t", content=b"x", headers={"Origin": origin, "Content-Type": "text/plain"}
            )
            assert answer.status_code == 201, answer.text


async def test_a_cookie_publish_needs_an_explicitly_allowed_origin() -> None:
    """The CSRF check: a cookie rides along on a foreign page's request; a header does not."""
    settings = hub_settings(jwt_key=SECRET, cors_origins=(ORIGIN, "*"))
    token = mint(publish=["*"])
    async with app_client(settings) as client:
        client.cookies.set("ssehub_access_token", token)
        no_origin = await client.post("/topics/t", json={"data": "x"})
        assert (no_origin.status_code, no_origin.json()["error"]) == (403, "origin_required")
        wildcard_only = await client.post(
            "/topics/t", json={"data": "x"}, headers={"Origin": "https://other.example"}
        )
        assert (wildcard_only.status_code, wildcard_only.json()["error"]) == (
            403,
            "origin_not_allowed",
        )
        listed = await client.post("/topics/t", json={"data": "x"}, headers={"Origin": ORIGIN})
        assert listed.status_code == 201
        client.cookies.clear()
        # A header token is not sent by the browser on its own: no Origin needed.
        by_header = await client.post(
            "/topics/t", json={"data": "x"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert by_header.status_code == 201
        assert await _head(client) == 2


async def test_a_configured_allowed_host_refuses_other_hosts_on_every_route() -> None:
    async with app_client(hub_settings(allowed_hosts=("hub.example",))) as client:
        for method, path in (("GET", "/healthz"), ("GET", "/topics/t"), ("POST", "/topics/t")):
            answer = await client.request(method, path, headers={"Host": "rebound.evil"})
            assert answer.status_code == 400
            assert answer.json()["error"] == "host_not_allowed"
        ok = await client.get("/healthz", headers={"Host": "hub.example:8004"})
        assert ok.status_code == 200


def test_ssehub_serve_on_loopback_serves_only_the_loopback_names_by_default() -> None:
    assert set(served_settings(ServerSettings()).allowed_hosts) == {
        "localhost",
        "127.0.0.1",
        "::1",
    }
    assert served_settings(ServerSettings(host="0.0.0.0")).allowed_hosts == ()
    chosen = ServerSettings(allowed_hosts=("hub.example",))
    assert served_settings(chosen).allowed_hosts == ("hub.example",)


async def test_no_anonymous_subscribe_needs_a_token_and_a_bad_one_is_never_ignored() -> None:
    async with app_client(hub_settings(jwt_key=SECRET, anonymous_subscribe=False)) as client:
        anonymous = await client.get("/topics/t")
        assert (anonymous.status_code, anonymous.json()["error"]) == (401, "token_required")
    async with app_client(hub_settings(jwt_key=SECRET)) as client:
        bad = await client.get("/topics/t", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        basic = await client.get("/topics/t", headers={"Authorization": "Basic dTpw"})
        assert basic.status_code == 401


async def test_the_admin_surface_needs_an_admin_token_when_a_key_is_set() -> None:
    async with app_client(hub_settings(jwt_key=SECRET)) as client:
        assert (await client.get("/metrics")).status_code == 401
        reader = {"Authorization": f"Bearer {mint(subscribe=['chat/*'])}"}
        assert (await client.get("/metrics", headers=reader)).status_code == 403
        admin = {"Authorization": f"Bearer {mint(subscribe=['ssehub/stats'])}"}
        assert (await client.get("/metrics", headers=admin)).status_code == 200
    async with app_client(hub_settings(host="0.0.0.0")) as client:
        assert (await client.get("/metrics")).status_code == 403
    async with app_client() as client:  # loopback, no key: as before
        assert (await client.get("/metrics")).status_code == 200
