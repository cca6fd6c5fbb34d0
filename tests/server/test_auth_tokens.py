"""The bad-token table: every unusable token is refused, publish and subscribe alike.

Issue 11 (access control): tokens are verified with PyJWT against a configured key and
algorithm allowlist; a refusal is ``401`` (``400`` for a token in the query string) with a
JSON body and ``WWW-Authenticate``, and nothing is stored.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from tests.support.apps import app_client, hub_settings
from tests.support.tokens import SECRET, b64, forge, mint

ISSUER = "https://issuer.test"
AUDIENCE = "ssehub-tests"
CLAIMS = {"iss": ISSUER, "aud": AUDIENCE}
GRANT = {"publish": ["*"], "subscribe": ["*"]}


def _good() -> str:
    return mint(**GRANT, **CLAIMS)


def _tampered() -> str:
    header, _payload, signature = _good().split(".")
    forged_payload = forge({}, {**CLAIMS, "exp": int(time.time()) + 3600, "forged": 1})
    return f"{header}.{forged_payload.split('.')[1]}.{signature}"


def _legacy_none() -> str:
    return jwt.encode({"mercure": GRANT}, None, algorithm="none")


#: (name, token or None for the query-string case, status, error code)
BAD_TOKENS: list[tuple[str, str, int, str]] = [
    ("expired", mint(**GRANT, **CLAIMS, ttl=-60), 401, "invalid_token"),
    ("legacy expired", mint(**GRANT, legacy=True, ttl=-60), 401, "invalid_token"),
    ("not yet valid", mint(**GRANT, **CLAIMS, nbf=int(time.time()) + 3600), 401, "invalid_token"),
    ("alg none", _legacy_none(), 401, "invalid_token"),
    (
        "alg none, at+jwt, no signature",
        forge({"alg": "none", "typ": "at+jwt"}, {**CLAIMS, "exp": int(time.time()) + 60}),
        401,
        "invalid_token",
    ),
    ("alg outside the allowlist", mint(**GRANT, **CLAIMS, algorithm="HS512"), 401, "invalid_token"),
    (
        "wrong key",
        mint(**GRANT, **CLAIMS, key="another-secret-long-enough-for-every-hs-algorithm-0123456789"),
        401,
        "invalid_token",
    ),
    ("tampered payload", _tampered(), 401, "invalid_token"),
    ("wrong iss", mint(**GRANT, iss="https://evil.test", aud=AUDIENCE), 401, "invalid_token"),
    ("wrong aud", mint(**GRANT, iss=ISSUER, aud="someone-else"), 401, "invalid_token"),
    ("no iss", mint(**GRANT, aud=AUDIENCE), 401, "invalid_token"),
    ("1.0 dialect without exp", mint(**GRANT, **CLAIMS, ttl=None), 401, "invalid_token"),
    (
        "typ missing for the 1.0 dialect",
        mint(**GRANT, **CLAIMS, headers={"typ": "JWT"}),
        401,
        "invalid_token",
    ),
    ("malformed JSON in the header", f"{b64(b'{nope')}.{b64(b'{}')}.sig", 401, "invalid_token"),
    (
        "malformed JSON in the payload",
        f"{_good().split('.')[0]}.{b64(b'{not json')}.{_good().split('.')[2]}",
        401,
        "invalid_token",
    ),
    ("not a JWT at all", "garbage", 401, "invalid_token"),
    ("a 1 MB token", "a" * (1024 * 1024), 401, "invalid_token"),
    (
        "a grant of the wrong shape",
        mint(**CLAIMS, authorization_details={"publish": "*"}),
        401,
        "invalid_token",
    ),
]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = hub_settings(
        jwt_key=SECRET, jwt_issuer=ISSUER, jwt_audience=(AUDIENCE,), cors_origins=()
    )
    async with app_client(settings) as http:
        yield http


async def _head(client: httpx.AsyncClient) -> int:
    return int((await client.get("/healthz")).json()["head"])


def _assert_refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text[:300]
    body = answer.json()
    assert body["error"] == code
    assert body["message"]
    assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("name", "token", "status", "code"), BAD_TOKENS, ids=[t[0] for t in BAD_TOKENS]
)
async def test_a_bad_token_is_refused_by_publish_and_subscribe_and_nothing_is_stored(
    client: httpx.AsyncClient, name: str, token: str, status: int, code: str
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    published = await client.post("/topics/t", json={"data": "x"}, headers=headers)
    _assert_refused(published, status, code)
    for path in ("/topics/t", "/events?topic=t"):
        subscribed = await client.get(path, headers=headers)
        _assert_refused(subscribed, status, code)
    # The same token as the cookie is refused the same way (a subscribe: no Origin needed).
    client.cookies.set("ssehub_access_token", token[:4000])
    try:
        by_cookie = await client.get("/topics/t")
        assert by_cookie.status_code == status
    finally:
        client.cookies.clear()
    assert await _head(client) == 0


@pytest.mark.parametrize("param", ["authorization", "access_token"])
async def test_a_token_in_the_query_string_is_refused_unread(
    client: httpx.AsyncClient, param: str
) -> None:
    token = _good()
    published = await client.post(f"/topics/t?{param}={token}", json={"data": "x"})
    _assert_refused(published, 400, "token_in_query")
    subscribed = await client.get(f"/topics/t?{param}={token}")
    _assert_refused(subscribed, 400, "token_in_query")
    assert await _head(client) == 0


async def test_a_good_token_publishes_in_either_dialect(client: httpx.AsyncClient) -> None:
    for token in (_good(), mint(**GRANT, legacy=True)):
        answer = await client.post(
            "/topics/t", json={"data": "x"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 201, answer.text
    assert await _head(client) == 2


async def test_publish_without_a_token_is_401_without_an_error_code(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/topics/t", json={"data": "x"})
    assert answer.status_code == 401
    assert answer.json()["error"] == "token_required"
    assert answer.headers["www-authenticate"] == "Bearer"
    assert await _head(client) == 0


async def test_a_token_without_the_topic_is_403_insufficient_scope(
    client: httpx.AsyncClient,
) -> None:
    for token in (mint(publish=["chat/*"], **CLAIMS), mint(publish=["chat/{room}"], legacy=True)):
        headers = {"Authorization": f"Bearer {token}"}
        answer = await client.post("/topics/news", json={"data": "x"}, headers=headers)
        assert answer.status_code == 403
        assert answer.json()["error"] == "insufficient_scope"
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
        granted = await client.post("/topics/chat/1", json={"data": "x"}, headers=headers)
        assert granted.status_code == 201
    assert await _head(client) == 2
