"""Access tokens: JWS verified with PyJWT, and the grants their claims carry.

The model is Mercure's (draft-08 and its authorization docs), so a token
minted for a Mercure hub works here unchanged.  Conventions:

* **Algorithms** come from the configured allowlist (``--jwt-alg``, default
  ``HS256``), never from the token; ``none`` can't be configured.  The key is
  an HS secret, a PEM public key (``@PATH``), or the JWKS at ``--jwks-url``
  (``PyJWKClient``, keys cached, refetched at most once per 30 s; a token's
  ``kid`` picks one: see ``_jwks``).  An HS
  algorithm with a PEM key is refused by PyJWT (no algorithm confusion).
* **Bounds**: a token longer than :data:`MAX_TOKEN_LENGTH` is refused before
  anything is decoded; a claim may name at most :data:`MAX_SELECTORS`
  selectors.
* **Time**: ``exp`` is enforced and ``nbf`` too when present, with no leeway.
* **Verified tokens are remembered** (by SHA-256, at most
  :data:`VERIFIED_CACHE_SIZE`, least recently used forgotten first) until their
  ``exp`` and for at most :data:`VERIFIED_TTL` seconds, so a publisher or a
  reconnecting browser presenting the same token pays for the signature once
  a minute, not on every request; a refused token is never remembered.
* **Two dialects**, both accepted:

  - Mercure 1.0 — header ``typ: at+jwt``; ``exp`` required; ``iss``/``aud``
    checked when configured; ``authorization_details`` entries of type
    :data:`MERCURE_DETAIL_TYPE` with ``actions`` (``publish``, ``subscribe``)
    and ``topics`` ``[{"match": …, "match_type": "exact" | "urlpattern"}]``.
    A token carrying ``authorization_details`` without ``typ: at+jwt`` is
    refused (it would otherwise skip the ``iss``/``aud`` checks).
  - legacy ``mercure`` claim — ``{"publish": [...], "subscribe": [...]}`` of
    ``*``, URI templates or exact topics; verified by key, algorithm and
    ``exp`` when present (as Mercure 0.x does), not by ``iss``/``aud``.

  A verified token with neither claim grants nothing (it still identifies a
  client for ``--no-anonymous-subscribe``).
* **Admin**: a token whose ``subscribe`` grant selects :data:`ADMIN_TOPIC`
  (``*`` does) may read the admin surface (``/metrics``, the stats feed).

Every refusal raises :class:`~ssehub.errors.InvalidTokenError` with a short
reason, answered ``401`` with ``WWW-Authenticate: Bearer error="invalid_token"``.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt.algorithms import has_crypto

from ..errors import InvalidTokenError
from ..hub import ALL_TOPICS, NO_GRANT, InvalidSelectorError, Selector, TopicGrant
from ._jwks import MIN_REFETCH_INTERVAL, JWKSKeys

__all__ = [
    "ADMIN_TOPIC",
    "MAX_SELECTORS",
    "MAX_TOKEN_LENGTH",
    "MERCURE_DETAIL_TYPE",
    "Claims",
    "TokenVerifier",
    "mint_token",
]

#: The longest token read, in characters (an RS4096 token with many topics fits).
MAX_TOKEN_LENGTH = 8192
#: Most selectors one token may carry (publish and subscribe together).
MAX_SELECTORS = 256
#: Most verified tokens remembered at once.
VERIFIED_CACHE_SIZE = 4096
#: Longest a verified token is remembered, in seconds (key rotation takes effect by then).
VERIFIED_TTL = 60.0
#: ``authorization_details`` entries of this type are Mercure's.
MERCURE_DETAIL_TYPE = "https://mercure.rocks/authorization-detail"
#: A subscribe grant that selects this topic opens the admin surface; it is the
#: dashboard's stats feed, published private when a key is configured.
ADMIN_TOPIC = "ssehub/stats"

_AT_JWT = frozenset({"at+jwt", "application/at+jwt"})
_HMAC = frozenset({"HS256", "HS384", "HS512"})
_KNOWN = _HMAC | {
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "ES256K", "EdDSA",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token allows, and until when (``expires_at``: epoch seconds)."""

    publish: TopicGrant
    subscribe: TopicGrant
    expires_at: float | None

    @property
    def admin(self) -> bool:
        return self.subscribe.allows(ADMIN_TOPIC)


class TokenVerifier:
    """Verifies tokens with a configured key and algorithm allowlist.

    ``key`` is an HS secret, or ``@PATH`` naming a PEM public key file.
    Raises ``ValueError`` at construction for a configuration that can't work.
    ``clock`` (monotonic seconds) and ``jwks_refetch_interval`` drive the
    JWKS key cache (:class:`._jwks.JWKSKeys`); ``wall_clock`` (epoch seconds)
    ends remembered tokens at their ``exp``.
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        algorithms: Sequence[str] = ("HS256",),
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: Sequence[str] = (),
        jwks_refetch_interval: float = MIN_REFETCH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._wall_clock = wall_clock
        #: SHA-256 of a verified token -> its claims, and until when they are trusted.
        self._verified: OrderedDict[bytes, tuple[Claims, float]] = OrderedDict()
        #: Verifications answered from memory.
        self.remembered = 0
        algs = list(dict.fromkeys(algorithms))
        unknown = [a for a in algs if a not in _KNOWN]
        if unknown or not algs:
            raise ValueError(
                f"unsupported JWT algorithm(s) {', '.join(unknown) or '(none given)'}; "
                f"choose from {', '.join(sorted(_KNOWN))} ('none' is never allowed)"
            )
        if key is None and jwks_url is None:
            raise ValueError("a token verifier needs --jwt-key or --jwks-url")
        self.algorithms = algs
        self.issuer = issuer
        self.audience = list(audience)
        self._key: str | bytes | None = None
        if key is not None:
            if key.startswith("@"):
                self._key = _read_pem(Path(key[1:]))
                if set(algs) & _HMAC:
                    raise ValueError("an HS algorithm can't be used with a PEM key (--jwt-key @…)")
                if not has_crypto:
                    raise ValueError(
                        "a PEM key (--jwt-key @…) needs the cryptography package: "
                        "pip install 'PyJWT[crypto]'"
                    )
            else:
                if not set(algs) & _HMAC:
                    raise ValueError("--jwt-key KEY is an HS secret: allow HS256/384/512")
                self._key = key.encode("utf-8")
        if jwks_url and not has_crypto:
            raise ValueError(
                "--jwks-url needs the cryptography package: pip install 'PyJWT[crypto]'"
            )
        try:
            self.jwks = (
                JWKSKeys(jwks_url, min_refetch_interval=jwks_refetch_interval, clock=clock)
                if jwks_url
                else None
            )
        except jwt.PyJWKClientError as exc:  # e.g. a scheme other than http(s)
            raise ValueError(f"unusable --jwks-url: {exc}") from exc

    async def verify(self, token: str) -> Claims:
        """The claims of a valid ``token``; raises :class:`InvalidTokenError` otherwise."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError(f"token over {MAX_TOKEN_LENGTH} characters")
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        now = self._wall_clock()
        known = self._verified.get(digest)
        if known is not None:
            claims, until = known
            if now < until:
                self._verified.move_to_end(digest)
                self.remembered += 1
                return claims
            del self._verified[digest]
            if claims.expires_at is not None and now >= claims.expires_at:
                raise InvalidTokenError("token expired")
        claims = await self._verify(token)
        until = now + VERIFIED_TTL
        if claims.expires_at is not None:
            until = min(until, claims.expires_at)
        self._verified[digest] = (claims, until)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    async def _verify(self, token: str) -> Claims:
        """Verify ``token`` with PyJWT (no memory)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"malformed token: {exc}") from exc
        if header.get("alg") not in self.algorithms:
            raise InvalidTokenError(f"algorithm {str(header.get('alg'))[:20]!r} is not allowed")
        key = await self._key_for(header)
        typ = header.get("typ")
        modern = isinstance(typ, str) and typ.lower() in _AT_JWT
        try:
            if modern:
                payload = jwt.decode(
                    token,
                    key,
                    algorithms=self.algorithms,
                    audience=self.audience or None,
                    issuer=self.issuer,
                    options={"require": ["exp"], "verify_aud": bool(self.audience)},
                )
            else:
                payload = jwt.decode(
                    token, key, algorithms=self.algorithms, options={"verify_aud": False}
                )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidTokenError("token not valid yet (nbf)") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"token refused: {exc}") from exc
        exp = payload.get("exp")
        expires_at = float(exp) if isinstance(exp, int | float) else None
        if modern:
            publish, subscribe = _modern_grants(payload)
        elif "authorization_details" in payload:
            raise InvalidTokenError("authorization_details needs the header typ: at+jwt")
        else:
            publish, subscribe = _legacy_grants(payload)
        return Claims(publish, subscribe, expires_at)

    async def _key_for(self, header: Mapping[str, Any]) -> Any:
        if self.jwks is not None and (self._key is None or "kid" in header):
            return await self.jwks.key_for(header.get("kid"))
        return self._key


def _selectors(values: Any, build: Any, budget: list[int]) -> TopicGrant:
    if values is None:
        return NO_GRANT
    if not isinstance(values, list):
        raise InvalidTokenError("topic selectors must be a list")
    budget[0] -= len(values)
    if budget[0] < 0:
        raise InvalidTokenError(f"token names over {MAX_SELECTORS} selectors")
    found: list[Selector] = []
    for value in values:
        try:
            found.append(build(value))
        except InvalidSelectorError as exc:
            raise InvalidTokenError(f"unusable topic selector: {exc}") from exc
    return TopicGrant.of(found)


def _legacy_grants(payload: Mapping[str, Any]) -> tuple[TopicGrant, TopicGrant]:
    claim = payload.get("mercure")
    if claim is None:
        return NO_GRANT, NO_GRANT
    if not isinstance(claim, dict):
        raise InvalidTokenError("the mercure claim must be an object")

    def build(value: Any) -> Selector:
        if not isinstance(value, str):
            raise InvalidSelectorError("a selector must be a string")
        return Selector.template(value)

    budget = [MAX_SELECTORS]
    return (
        _selectors(claim.get("publish"), build, budget),
        _selectors(claim.get("subscribe"), build, budget),
    )


def _modern_selector(value: Any) -> Selector:
    if not isinstance(value, dict) or not isinstance(value.get("match"), str):
        raise InvalidSelectorError('a topic must be {"match": "…", "match_type": "…"}')
    match, kind = value["match"], value.get("match_type", "exact")
    if match == "*":
        return ALL_TOPICS.selectors[0]
    if kind == "exact":
        return Selector.exact(match)
    if kind == "urlpattern":
        return Selector.urlpattern(match)
    raise InvalidSelectorError(f"unknown match_type {str(kind)[:20]!r}")


def _modern_grants(payload: Mapping[str, Any]) -> tuple[TopicGrant, TopicGrant]:
    details = payload.get("authorization_details", [])
    if not isinstance(details, list):
        raise InvalidTokenError("authorization_details must be a list")
    publish: list[Selector] = []
    subscribe: list[Selector] = []
    budget = [MAX_SELECTORS]
    for detail in details:
        if not isinstance(detail, dict) or detail.get("type") != MERCURE_DETAIL_TYPE:
            continue  # someone else's authorization detail
        actions = detail.get("actions", [])
        if not isinstance(actions, list):
            raise InvalidTokenError("actions must be a list")
        grant = _selectors(detail.get("topics", []), _modern_selector, budget)
        if "publish" in actions:
            publish.extend(grant.selectors)
        if "subscribe" in actions:
            subscribe.extend(grant.selectors)
    return TopicGrant.of(publish), TopicGrant.of(subscribe)


def _topics(selectors: Sequence[str]) -> list[dict[str, str]]:
    return [
        {"match": s, "match_type": "urlpattern" if ("*" in s or ":" in s) else "exact"}
        for s in selectors
    ]


def mint_token(
    key: str | bytes,
    *,
    publish: Sequence[str] = (),
    subscribe: Sequence[str] = (),
    ttl: float = 3600.0,
    algorithm: str = "HS256",
    issuer: str | None = None,
    audience: Sequence[str] = (),
    legacy: bool = False,
    now: float | None = None,
) -> str:
    """A signed token for development (``ssehub token``), Mercure 1.0 unless ``legacy``.

    In the 1.0 dialect a selector with ``*`` or ``:`` is a ``urlpattern``, any
    other is ``exact``; ``*`` alone is every topic.  ``key`` signs: an HS
    secret, or a PEM *private* key for the asymmetric algorithms.
    """
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {"iat": issued, "exp": issued + max(1, int(ttl))}
    headers: dict[str, Any] = {}
    if issuer:
        payload["iss"] = issuer
    if audience:
        payload["aud"] = list(audience) if len(audience) > 1 else audience[0]
    if legacy:
        payload["mercure"] = {"publish": list(publish), "subscribe": list(subscribe)}
    else:
        headers["typ"] = "at+jwt"
        details = []
        for action, selectors in (("publish", publish), ("subscribe", subscribe)):
            if selectors:
                details.append(
                    {"type": MERCURE_DETAIL_TYPE, "actions": [action], "topics": _topics(selectors)}
                )
        payload["authorization_details"] = details
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


#: Largest PEM file read for ``--jwt-key @PATH`` (a public key is a few kilobytes).
MAX_PEM_BYTES = 64 * 1024


def _read_pem(path: Path) -> str:
    """The text of a PEM key file; ``ValueError`` naming the file for anything unusable."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_PEM_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"--jwt-key @{path}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_PEM_BYTES:
        raise ValueError(f"--jwt-key @{path}: over {MAX_PEM_BYTES} bytes, not a PEM key")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"--jwt-key @{path}: not a PEM file (not ASCII text)") from None
    if "-----BEGIN" not in text:
        raise ValueError(f"--jwt-key @{path}: not a PEM file (no -----BEGIN line)")
    return text
