"""Access tokens for tests: mint good ones in either dialect, and forge bad ones.

``key_pair`` makes an RS256, ES256 or EdDSA key pair (PEM, and the public
key as a JWK for a JWKS).  ``mint`` builds a Mercure 1.0 token (``typ:
at+jwt``, ``authorization_details``) or a legacy one (the ``mercure``
claim) with PyJWT; ``b64`` and ``forge`` assemble tokens by hand (``alg:
none``, a tampered payload, broken JSON).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

__all__ = ["SECRET", "KeyPair", "b64", "forge", "key_pair", "mint", "modern_details"]

#: The HS256 secret the kit's hubs are started with (``--jwt-key``).
SECRET = "kit-secret-long-enough-for-every-hs-algorithm-0123456789abcdef"


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def forge(header: Any, payload: Any, signature: str = "") -> str:
    """A token assembled by hand from JSON-able parts (or raw ``str`` parts)."""

    def part(value: Any) -> str:
        return value if isinstance(value, str) else b64(json.dumps(value).encode())

    return f"{part(header)}.{part(payload)}.{signature}"


def modern_details(publish: Sequence[str], subscribe: Sequence[str]) -> list[dict[str, Any]]:
    """``authorization_details`` granting ``publish``/``subscribe``.

    A selector with ``*`` or ``:`` is a ``urlpattern``, any other is ``exact``.
    """

    def topics(selectors: Sequence[str]) -> list[dict[str, str]]:
        return [
            {
                "match": s,
                "match_type": "urlpattern" if ("*" in s or ":" in s) else "exact",
            }
            for s in selectors
        ]

    details = []
    if publish:
        details.append(
            {
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["publish"],
                "topics": topics(publish),
            }
        )
    if subscribe:
        details.append(
            {
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["subscribe"],
                "topics": topics(subscribe),
            }
        )
    return details


def mint(
    *,
    publish: Sequence[str] = (),
    subscribe: Sequence[str] = (),
    key: Any = SECRET,
    algorithm: str = "HS256",
    legacy: bool = False,
    ttl: float | None = 3600.0,
    now: float | None = None,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A signed token granting ``publish``/``subscribe`` selectors (``ttl=None``: no ``exp``)."""
    issued = time.time() if now is None else now
    payload: dict[str, Any] = {"iat": int(issued), **claims}
    if ttl is not None:  # None: no exp at all
        payload.setdefault("exp", int(issued + ttl))
    header: dict[str, Any] = dict(headers or {})
    if legacy:
        payload.setdefault("mercure", {"publish": list(publish), "subscribe": list(subscribe)})
    else:
        header.setdefault("typ", "at+jwt")
        payload.setdefault("authorization_details", modern_details(publish, subscribe))
    return jwt.encode(payload, key, algorithm=algorithm, headers=header)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An asymmetric key pair: ``private_pem`` signs, ``public_pem`` (or ``jwk``) verifies."""

    algorithm: str
    private_pem: bytes
    public_pem: bytes

    def jwk(self, kid: str) -> dict[str, Any]:
        """The public key as a JWK (``kid``, ``use: sig``, ``alg``), for a JWKS document."""
        public = serialization.load_pem_public_key(self.public_pem)
        as_jwk = jwt.get_algorithm_by_name(self.algorithm).to_jwk(public, as_dict=True)
        return {**as_jwk, "kid": kid, "use": "sig", "alg": self.algorithm}


def key_pair(algorithm: str) -> KeyPair:
    """A fresh key pair for ``RS256``, ``ES256`` or ``EdDSA`` (Ed25519)."""
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"no key pair for {algorithm}")
    return KeyPair(
        algorithm,
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
