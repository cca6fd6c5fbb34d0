"""Keys: RS256, ES256 and EdDSA from a PEM file or a JWKS URL; verified tokens remembered.

Issue 11.

The JWKS is served by a real HTTP server (uvicorn on a loopback port) that
counts its requests; the verifier's clock is a fake one, so the rate limit on
refetches (an unknown ``kid`` storm) is checked to the second.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ssehub.errors import InvalidTokenError
from ssehub.server import TokenVerifier
from ssehub.server._jwks import KEYS_LIFESPAN, MIN_REFETCH_INTERVAL
from ssehub.server._tokens import VERIFIED_TTL
from tests.support.apps import app_client, hub_settings
from tests.support.clock import FakeClock
from tests.support.servers import serve_in_thread
from tests.support.tokens import SECRET, KeyPair, b64, forge, key_pair, mint, modern_details

ALGORITHMS = ["RS256", "ES256", "EdDSA"]


@pytest.fixture(scope="module")
def pairs() -> dict[str, KeyPair]:
    return {algorithm: key_pair(algorithm) for algorithm in ALGORITHMS}


def _token(pair: KeyPair, kid: str | None = None, **grants: Any) -> str:
    headers = {"kid": kid} if kid else None
    return mint(key=pair.private_pem, algorithm=pair.algorithm, headers=headers, **grants)


def _hs256_signed_with(secret: bytes) -> str:
    """A token HMAC-signed with ``secret`` by hand (PyJWT won't use a PEM as an HMAC key)."""
    header = {"alg": "HS256", "typ": "at+jwt"}
    payload = {"exp": int(time.time()) + 600, "authorization_details": modern_details(["*"], [])}
    signing_input = forge(header, payload).rstrip(".")
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a_pem_public_key_verifies_tokens_of_its_algorithm_only(
    algorithm: str, pairs: dict[str, KeyPair], tmp_path: Path
) -> None:
    pair = pairs[algorithm]
    pem = tmp_path / "public.pem"
    pem.write_bytes(pair.public_pem)
    settings = hub_settings(jwt_key=f"@{pem}", jwt_algorithms=(algorithm,))
    forger = key_pair(algorithm)  # same algorithm, another key
    other = pairs["ES256" if algorithm != "ES256" else "RS256"]
    refused = {
        "another key": _token(forger, publish=["*"]),
        "another algorithm": _token(other, publish=["*"]),
        # Algorithm confusion: HS256 "signed" with the public PEM as the secret.
        "hs256 with the pem": _hs256_signed_with(pair.public_pem),
    }
    async with app_client(settings) as client:
        for why, token in refused.items():
            answer = await client.post(
                "/topics/t", content=b"x", headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 401, why
            assert answer.json()["error"] == "invalid_token", why
        assert (await client.get("/healthz")).json()["head"] == 0
        good = _token(pair, publish=["t"])
        answer = await client.post(
            "/topics/t", content=b"x", headers={"Authorization": f"Bearer {good}"}
        )
        assert answer.status_code == 201


@dataclass
class JWKSServer:
    """What the JWKS endpoint serves, and how often it was asked."""

    url: str = ""
    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    requests: int = 0


@pytest.fixture
def jwks(pairs: dict[str, KeyPair]) -> Iterator[JWKSServer]:
    state = JWKSServer(keys=[pairs["RS256"].jwk("rsa-1")])

    async def keys(request: Request) -> Response:
        state.requests += 1
        if state.status != 200:
            return JSONResponse({"error": "down"}, status_code=state.status)
        return JSONResponse({"keys": state.keys})

    app = Starlette(routes=[Route("/.well-known/jwks.json", keys)])
    with serve_in_thread(app) as base:
        state.url = f"{base}/.well-known/jwks.json"
        yield state


async def _refused(verifier: TokenVerifier, token: str) -> bool:
    try:
        await verifier.verify(token)
    except InvalidTokenError:
        return True
    return False


async def test_jwks_keys_verify_every_algorithm_and_a_kid_storm_refetches_once_per_interval(
    jwks: JWKSServer, pairs: dict[str, KeyPair], clock: FakeClock
) -> None:
    verifier = TokenVerifier(
        jwks_url=jwks.url, algorithms=ALGORITHMS, clock=clock, wall_clock=clock
    )
    rsa_token = _token(pairs["RS256"], "rsa-1", subscribe=["a"])
    assert (await verifier.verify(rsa_token)).subscribe.allows("a")
    assert (await verifier.verify(rsa_token)).subscribe.allows("a")
    assert jwks.requests == 1  # cached

    storm = [_token(pairs["RS256"], secrets.token_hex(8)) for _ in range(40)]
    for token in storm:  # within the interval of the first fetch: no fetch at all
        assert await _refused(verifier, token)
    assert jwks.requests == 1
    clock.advance(MIN_REFETCH_INTERVAL)
    for token in storm:  # one fetch for the whole storm
        assert await _refused(verifier, token)
    assert jwks.requests == 2

    # The issuer rotates in an ES256 and an EdDSA key: found at the next allowed fetch.
    jwks.keys += [pairs["ES256"].jwk("ec-1"), pairs["EdDSA"].jwk("ed-1")]
    ec_token = _token(pairs["ES256"], "ec-1", publish=["b"])
    assert await _refused(verifier, ec_token)
    clock.advance(MIN_REFETCH_INTERVAL)
    assert (await verifier.verify(ec_token)).publish.allows("b")
    assert (await verifier.verify(_token(pairs["EdDSA"], "ed-1", publish=["c"]))).publish.allows(
        "c"
    )
    assert jwks.requests == 3
    # A kid of the set with another key's signature is still refused.
    assert await _refused(verifier, _token(key_pair("EdDSA"), "ed-1"))


async def test_a_jwks_url_that_fails_keeps_the_keys_and_is_asked_once_per_interval(
    jwks: JWKSServer, pairs: dict[str, KeyPair], clock: FakeClock
) -> None:
    verifier = TokenVerifier(jwks_url=jwks.url, algorithms=["RS256"], clock=clock, wall_clock=clock)
    token = _token(pairs["RS256"], "rsa-1", subscribe=["a"])
    await verifier.verify(token)
    jwks.status = 503
    clock.advance(KEYS_LIFESPAN)  # the set is due for a refresh; the refresh fails
    for _ in range(20):
        await verifier.verify(token)  # the set held is kept
        assert await _refused(verifier, _token(pairs["RS256"], secrets.token_hex(8)))
    assert jwks.requests == 2
    jwks.status = 200
    clock.advance(MIN_REFETCH_INTERVAL)
    await verifier.verify(_token(pairs["RS256"], "rsa-1", subscribe=["b"]))  # not remembered
    assert jwks.requests == 3


async def test_a_hub_with_a_jwks_url_takes_a_publish_signed_by_one_of_its_keys(
    jwks: JWKSServer, pairs: dict[str, KeyPair]
) -> None:
    jwks.keys.append(pairs["EdDSA"].jwk("ed-1"))
    settings = hub_settings(jwks_url=jwks.url, jwt_algorithms=("RS256", "EdDSA"))
    async with app_client(settings) as client:
        for kid, pair, status in (("ed-1", pairs["EdDSA"], 201), ("nope", pairs["RS256"], 401)):
            token = _token(pair, kid, publish=["t"])
            answer = await client.post(
                "/topics/t", content=b"x", headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == status, kid
        assert (await client.get("/healthz")).json()["head"] == 1


async def test_a_verified_token_is_remembered_until_its_exp_and_for_a_minute_at_most() -> None:
    clock = FakeClock(time.time())
    verifier = TokenVerifier(key=SECRET, wall_clock=clock)
    token = mint(publish=["t"], ttl=3600)
    for _ in range(3):
        assert (await verifier.verify(token)).publish.allows("t")
    assert verifier.remembered == 2  # one signature check for three requests
    clock.advance(VERIFIED_TTL)
    await verifier.verify(token)  # checked again after a minute
    assert verifier.remembered == 2
    clock.advance(3600)
    with pytest.raises(InvalidTokenError, match="expired"):
        await verifier.verify(token)  # remembered claims never outlive exp
    forged = mint(publish=["t"], key="another-secret-long-enough-for-every-hs-algorithm-012345")
    for _ in range(2):
        with pytest.raises(InvalidTokenError):
            await verifier.verify(forged)
    assert verifier.remembered == 2  # a refused token is never remembered
