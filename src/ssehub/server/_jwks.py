"""Signing keys from a JWKS URL (``--jwks-url``): PyJWKClient fetches, this decides when.

PyJWT's :class:`jwt.PyJWKClient` fetches the key set and parses it; its own
cache reads ``time.monotonic`` and does not rate-limit failed fetches, so the
set is cached here, by an injected clock.  Conventions:

* The set is fetched on first use, and again once it is :data:`KEYS_LIFESPAN`
  seconds old.
* A token whose ``kid`` is not in the set asks for a fetch too (the issuer may
  have rotated its keys), but **fetches are attempted at most once per
  ``min_refetch_interval`` seconds** (:data:`MIN_REFETCH_INTERVAL`), failed
  ones included: a storm of tokens with made-up ``kid`` values, or a JWKS URL
  that is down, costs the issuer one request per interval, never one per token.
* Fetches run one at a time (an ``asyncio.Lock``) in a thread (urllib
  blocks), at most ``timeout`` seconds each; a failed fetch keeps the set
  already held and is logged.
* A token without ``kid`` is verified only when the set holds exactly one
  signing key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import jwt

from ..errors import InvalidTokenError

__all__ = ["KEYS_LIFESPAN", "MIN_REFETCH_INTERVAL", "JWKSKeys"]

#: Seconds a fetched key set is used before it is fetched again.
KEYS_LIFESPAN = 300.0
#: The fewest seconds between two fetches of the key set (an unknown ``kid`` storm).
MIN_REFETCH_INTERVAL = 30.0

logger = logging.getLogger("ssehub.server.jwks")


class JWKSKeys:
    """The signing keys at one JWKS URL, fetched rarely (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        lifespan: float = KEYS_LIFESPAN,
        min_refetch_interval: float = MIN_REFETCH_INTERVAL,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # PyJWT's set cache is off: this object holds the set, by its own clock.
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout)
        self._lifespan = lifespan
        self._min_interval = min_refetch_interval
        self._clock = clock
        self._keys: list[jwt.PyJWK] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        #: Fetches attempted so far (successful or not).
        self.fetches = 0

    async def key_for(self, kid: object) -> Any:
        """The verification key for a token whose header names ``kid`` (``None``: none)."""
        if kid is not None and not isinstance(kid, str):
            raise InvalidTokenError("the token's kid must be a string")
        fetched_at = self._fetched_at
        if fetched_at is None or self._clock() - fetched_at >= self._lifespan:
            await self._refresh()
        found = self._match(kid)
        if found is None and await self._refresh():
            found = self._match(kid)
        if found is None:
            if kid is None:
                raise InvalidTokenError("no key for this token: it names no kid")
            raise InvalidTokenError(f"no key for this token: unknown kid {kid[:40]!r}")
        return found.key

    def _match(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return self._keys[0] if len(self._keys) == 1 else None
        return next((key for key in self._keys if key.key_id == kid), None)

    async def _refresh(self) -> bool:
        """Fetch the set unless a fetch was attempted within the interval; whether it was."""
        async with self._lock:
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._min_interval:
                return False
            self._attempted_at = now
            self.fetches += 1
            try:
                keys = await asyncio.to_thread(self._client.get_signing_keys, True)
            except jwt.PyJWTError as exc:
                logger.warning("JWKS fetch from %s failed: %s", self._client.uri, exc)
                return False
            self._keys, self._fetched_at = keys, now
            return True
