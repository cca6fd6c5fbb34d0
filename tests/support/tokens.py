"""Access tokens for tests: mint good ones in either dialect, and forge bad ones.

``mint`` builds a Mercure 1.0 token (``typ: at+jwt``, ``authorization_details``)
or a legacy one (the ``mercure`` claim) with PyJWT; ``b64`` and ``forge``
assemble tokens by hand (``alg: none``, a tampered payload, broken JSON).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any

import jwt

__all__ = ["SECRET", "b64", "forge", "mint", "modern_details"]

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
