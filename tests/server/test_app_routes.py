"""The hub app's request/response routes, in process: publish, JSON errors, health, metrics, CORS.

No socket: httpx's ``ASGITransport`` drives ``HubApp`` (lifespan entered, in-memory
store).  Event streams, shutdown and several processes are tested end to end
in ``tests/e2e``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from ssehub.hub import RESET_EVENT
from tests.support.apps import app_client, hub_settings


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as client:
        yield client


async def head(client: httpx.AsyncClient) -> int:
    answer = await client.get("/healthz")
    assert answer.status_code == 200, answer.text
    value: int = answer.json()["head"]
    return value


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics:\n{text}"
    return float(match.group(1))


async def test_publish_answers_201_with_the_id_and_topic(client: httpx.AsyncClient) -> None:
    first = await client.post("/topics/chat/42", json={"data": "hello", "event": "msg"})
    second = await client.post("/topics/chat/42?event=note", content="plain text body")
    third = await client.post("/topics/chat/42", json={"data": {"n": 1}})
    answers = [first, second, third]
    assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
    assert {a.json()["topic"] for a in answers} == {"chat/42"}
    assert len({a.json()["id"] for a in answers}) == 3
    assert await head(client) == 3


async def test_healthz_reports_status_head_epoch_and_open_streams(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/healthz")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["status"] == "ok"
    assert body["head"] == 0
    assert body["open_streams"] == 0
    assert body["epoch"]


async def test_metrics_are_prometheus_text_counting_publishes(client: httpx.AsyncClient) -> None:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    before = await metric(client, "ssehub_events_published_total")
    for n in range(3):
        assert (await client.post("/topics/m", content=f"event {n}")).status_code == 201
    assert await metric(client, "ssehub_events_published_total") == before + 3
    assert await metric(client, "ssehub_open_streams") == 0


async def _chunks(total: int, size: int = 1024) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_413_and_stores_nothing(declared: bool) -> None:
    async with app_client(hub_settings(max_body_size=4096)) as client:
        content = b"x" * 4097 if declared else _chunks(4097)
        answer = await client.post("/topics/t", content=content)
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"] == "payload_too_large"
        at_limit = await client.post("/topics/t", content=b"x" * 4096)
        assert at_limit.status_code == 201, at_limit.text
        assert await head(client) == 1


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/topics/t", {"content": "x" * 2_000_000}, 413, "payload_too_large"),
        (
            "POST",
            "/topics/t",
            {"content": "{bad", "headers": {"content-type": "application/json"}},
            400,
            "invalid_json",
        ),
        ("POST", "/topics/t", {"json": ["not", "an", "object"]}, 400, "invalid_json"),
        ("POST", "/topics/t", {"json": {"data": "x", "id": "7"}}, 400, "invalid_json"),
        ("POST", "/topics/t", {"json": {"event": "x"}}, 400, "invalid_json"),
        ("POST", "/topics/t", {"json": {"data": "x", "event": "a\nb"}}, 422, "invalid_event"),
        ("POST", "/topics/t?event=a%0Db", {"content": "x"}, 422, "invalid_event"),
        ("POST", f"/topics/t?event={RESET_EVENT}", {"content": "x"}, 422, "invalid_event"),
        ("POST", "/topics/t", {"content": b"\xff\xfe"}, 400, "invalid_body"),
        ("POST", "/topics/a//b", {"content": "x"}, 400, "invalid_topic"),
        ("GET", "/topics/a%20b", {}, 400, "invalid_topic"),
        ("GET", "/events", {}, 400, "missing_topic"),
        (
            "GET",
            "/events?" + "&".join(f"topic=t{i}" for i in range(101)),
            {},
            400,
            "too_many_topics",
        ),
        ("GET", "/nowhere", {}, 404, "not_found"),
        ("DELETE", "/topics/t", {}, 405, "method_not_allowed"),
        ("PUT", "/healthz", {}, 405, "method_not_allowed"),
    ],
)
async def test_bad_requests_get_a_json_error_and_change_nothing(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int,
    code: str,
) -> None:
    before = await head(client)
    answer = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["error"] == code
    assert body["message"]
    assert await head(client) == before
    assert (await client.post("/topics/t", json={"data": "still serving"})).status_code == 201


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in answer.headers


async def test_cors_follows_the_allowlist() -> None:
    async with app_client(hub_settings(cors_origins=("https://app.example",))) as client:
        allowed = await client.options(
            "/topics/t",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "last-event-id",
            },
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    ("origins", "credentials"),
    [
        (("https://app.example",), True),
        (("https://app.example", "*"), False),
        (("https://app.example", "null"), False),
    ],
)
async def test_cookie_reads_across_origins_are_allowed_only_for_explicit_origins(
    origins: tuple[str, ...], credentials: bool
) -> None:
    """A cross-origin EventSource withCredentials needs Allow-Credentials; never for * or null."""
    async with app_client(hub_settings(cors_origins=origins)) as client:
        answer = await client.get("/healthz", headers={"Origin": "https://app.example"})
        assert answer.headers["access-control-allow-origin"] in ("https://app.example", "*")
        assert (answer.headers.get("access-control-allow-credentials") == "true") is credentials


@pytest.mark.parametrize("path", ["/topics/t", "/events?topic=t"])
async def test_head_on_a_stream_route_answers_its_headers_and_opens_no_stream(
    client: httpx.AsyncClient, path: str
) -> None:
    # Bounded: a HEAD that opened a stream would never end here.
    answer = await asyncio.wait_for(client.head(path), 10)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.content == b""
    health = (await client.get("/healthz")).json()
    assert health["open_streams"] == 0
