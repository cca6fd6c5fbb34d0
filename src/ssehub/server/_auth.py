"""Access control of HTTP requests: where tokens come from, and what each route needs.

Conventions (Mercure's model; the token rules live in ``_tokens``):

* **Token sources**: ``Authorization: Bearer …`` first, else the cookie
  ``--cookie-name`` (default ``ssehub_access_token``; set it ``Secure;
  HttpOnly; SameSite=Strict`` with a path covering the hub).  Never the query
  string: ``?authorization=`` or ``?access_token=`` is answered ``400``.
* **Publishing** needs a token granting ``publish`` on every topic of the
  event — always when a key (``--jwt-key``/``--jwks-url``) is configured.
  With no key, anonymous publishing is allowed on a loopback ``--host`` (the
  seed's ``curl -d`` keeps working) and refused elsewhere unless
  ``--allow-anonymous-publish``.
* **Browsers**: a publish carrying an ``Origin`` that is neither the hub's
  own nor in the CORS allowlist is refused (a foreign page's ``no-cors`` or
  ``text/plain`` POST), and so is a form submission (``Sec-Fetch-Mode:
  navigate``).  A publish authenticated by the *cookie* must carry an
  ``Origin`` named explicitly (the hub's own, or listed — ``*`` does not
  count): the CSRF check.
* **Subscribing**: a valid token's ``subscribe`` grant decides which private
  events reach the stream; a bad token is ``401`` (it is never silently
  ignored); no token is fine unless ``--no-anonymous-subscribe``.  Without a
  key, tokens are not read and private events reach nobody.
* **Host**: requests whose ``Host`` is not allowed (``--allowed-host``;
  ``ssehub serve`` bound to loopback defaults to the loopback names) are
  refused, so a DNS rebinding page can't read a local hub.
* **Admin surface** (``/metrics``, the stats feed, the dashboard): with a key,
  a token whose grant is admin (see ``_tokens``); with no key, loopback binds only.
  With ``--admin-port`` it is served on that loopback port alone (``_admin``
  marks those requests with :data:`ADMIN_SCOPE`), to anyone who can reach it
  there, and the main port answers ``404`` for it, stats feed included.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from ..errors import (
    AccessError,
    InsufficientScopeError,
    InvalidTokenError,
    MissingTokenError,
    TokenInQueryError,
)
from ..hub import NO_GRANT, Selector, TopicGrant
from ._errors import ApiError
from ._settings import ServerSettings
from ._tokens import ADMIN_TOPIC, MAX_TOKEN_LENGTH, Claims, TokenVerifier

#: What a stream opened on the admin port may read: the stats feed, private or not.
_ADMIN_GRANT = TopicGrant.of([Selector.exact(ADMIN_TOPIC)])

__all__ = ["ADMIN_SCOPE", "LOOPBACK_NAMES", "AccessPolicy", "Subscriber", "host_of", "is_loopback"]

#: Host names served by default when the hub is bound to a loopback address.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: The ASGI scope key the admin port's app sets on its requests (see ``_admin``).
ADMIN_SCOPE = "ssehub.admin"
#: Query parameters that would carry a token (refused, never read).
_TOKEN_PARAMS = ("authorization", "access_token")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a host name) is loopback only.

    ``localhost`` and its subdomains, and loopback addresses (``127.0.0.0/8``,
    ``::1``, bracketed or not); anything else, ``0.0.0.0`` included, is not.
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_of(header: str) -> str:
    """The host name of a ``Host`` header or an origin's authority, lower-cased, no port."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


@dataclass(frozen=True, slots=True)
class Subscriber:
    """What a subscriber may read: private events whose topic ``grant`` selects.

    ``expires_at`` (epoch seconds) is when its token expires; the stream ends by then.
    """

    grant: TopicGrant = NO_GRANT
    expires_at: float | None = None


class AccessPolicy:
    """The access rules of one ``HubApp``, built from its settings."""

    def __init__(self, settings: ServerSettings) -> None:
        self.verifier = (
            TokenVerifier(
                key=settings.jwt_key,
                algorithms=settings.jwt_algorithms,
                jwks_url=settings.jwks_url,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
            if settings.jwt_key or settings.jwks_url
            else None
        )
        self.cookie_name = settings.cookie_name
        self.loopback = is_loopback(settings.host)
        self.anonymous_publish = self.verifier is None and (
            self.loopback or settings.allow_anonymous_publish
        )
        self.anonymous_subscribe = settings.anonymous_subscribe
        # Empty: any Host (``ssehub serve`` fills in the loopback names, see ``_run``).
        hosts = frozenset(host_of(h) for h in settings.allowed_hosts)
        self.allowed_hosts = None if not hosts or "*" in hosts else hosts
        self.origins = frozenset(o.lower().rstrip("/") for o in settings.cors_origins)
        self.admin_port = settings.admin_port

    def startup_notes(self) -> list[str]:
        """Lines for the start-up log that say what is open to whom."""
        if self.verifier is not None:
            return ["access: every publish needs a token (a JWT key is configured)"]
        if self.anonymous_publish and not self.loopback:
            return ["access: ANYONE who reaches the port may publish (--allow-anonymous-publish)"]
        if not self.anonymous_publish:
            return [
                "access: publishing is refused: no --jwt-key/--jwks-url is configured on a "
                "non-loopback --host (configure a key, or pass --allow-anonymous-publish)"
            ]
        return ["access: no key configured; anonymous publishing allowed on loopback"]

    # -- Host and Origin ------------------------------------------------------

    def host_allowed(self, headers: Mapping[str, str]) -> bool:
        if self.allowed_hosts is None:
            return True
        host = headers.get("host")
        return host is not None and host_of(host) in self.allowed_hosts

    def _origin_allowed(self, origin: str, host: str | None, *, explicit: bool) -> bool:
        origin = origin.lower().rstrip("/")
        if origin in self.origins or (not explicit and "*" in self.origins):
            return True
        scheme, sep, authority = origin.partition("://")
        # Same origin: the page was served by this hub (its authority is our Host).
        return bool(sep) and scheme in ("http", "https") and authority == (host or "").lower()

    def _check_browser(self, conn: HTTPConnection, *, cookie: bool) -> None:
        headers = conn.headers
        if headers.get("sec-fetch-mode", "").lower() == "navigate":
            raise ApiError(
                403, "form_refused", "a browser form can't publish; use fetch() with a token"
            )
        origin = headers.get("origin")
        host = headers.get("host")
        if origin is None:
            if cookie:
                raise ApiError(
                    403, "origin_required", "a publish authenticated by cookie needs an Origin"
                )
            return
        if not self._origin_allowed(origin, host, explicit=cookie):
            raise ApiError(
                403,
                "origin_not_allowed",
                f"origin {origin[:100]!r} may not publish here (see --cors-origin)",
            )

    # -- tokens ---------------------------------------------------------------

    def token_of(self, conn: HTTPConnection) -> tuple[str | None, bool]:
        """The request's token and whether it came from the cookie.

        Raises :class:`TokenInQueryError` for a token in the query string and
        :class:`InvalidTokenError` for an ``Authorization`` that is not ``Bearer``
        or a token over the length bound (checked before anything is parsed).
        """
        if any(name in conn.query_params for name in _TOKEN_PARAMS):
            raise TokenInQueryError(
                "tokens are never read from the query string; send Authorization: Bearer "
                "or the cookie"
            )
        header = conn.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise InvalidTokenError("Authorization must be 'Bearer <token>'")
            return _bounded(token.strip()), False
        raw_cookie = conn.headers.get("cookie")
        if raw_cookie is None or self.cookie_name not in raw_cookie:
            return None, False
        if len(raw_cookie) > 4 * MAX_TOKEN_LENGTH:
            raise InvalidTokenError("cookies too long to hold a token")
        cookie = conn.cookies.get(self.cookie_name)
        return (_bounded(cookie), True) if cookie else (None, False)

    async def claims_of(self, conn: HTTPConnection) -> tuple[Claims | None, bool]:
        """The verified claims of the request's token (``None``: no token or no key)."""
        token, cookie = self.token_of(conn)
        if token is None or self.verifier is None:
            return None, cookie
        return await self.verifier.verify(token), cookie

    # -- what each route needs -------------------------------------------------

    async def authorize_publish(self, conn: HTTPConnection, topics: Sequence[str]) -> None:
        """Raise unless the request may publish to every one of ``topics``."""
        token, cookie = self.token_of(conn)
        self._check_browser(conn, cookie=cookie and self.verifier is not None)
        if self.verifier is None:
            if self.anonymous_publish:
                return
            raise AccessError(
                "publishing is off: this hub listens beyond loopback with no key; start it "
                "with --jwt-key KEY (or --jwks-url URL) and send a token, or pass "
                "--allow-anonymous-publish"
            )
        if token is None:
            raise MissingTokenError("publishing needs a token (Authorization: Bearer …)")
        claims = await self.verifier.verify(token)
        _require(claims.publish, topics, "publish")

    async def subscriber(self, conn: HTTPConnection, topics: Sequence[str] = ()) -> Subscriber:
        """The grant of a subscriber of ``topics``; raises for a bad token or a refused
        anonymous one, and for the stats feed on the main port when ``--admin-port`` is set."""
        if _on_admin_port(conn):
            return Subscriber(_ADMIN_GRANT)
        if self.admin_port is not None and ADMIN_TOPIC in topics:
            raise self._admin_elsewhere(conn)
        claims, _ = await self.claims_of(conn)
        if claims is None:
            if not self.anonymous_subscribe:
                raise MissingTokenError("subscribing needs a token (--no-anonymous-subscribe)")
            return Subscriber()
        return Subscriber(claims.subscribe, claims.expires_at)

    async def authorize_admin(self, conn: HTTPConnection) -> None:
        """Raise unless the request may see the admin surface (topic names, counters)."""
        if _on_admin_port(conn):
            return
        if self.admin_port is not None:
            raise self._admin_elsewhere(conn)
        if self.verifier is None:
            if self.loopback:
                return
            raise AccessError(
                "the admin surface is off: this hub listens beyond loopback with no key; "
                "configure --jwt-key and send an admin token"
            )
        claims, _ = await self.claims_of(conn)
        if claims is None:
            raise MissingTokenError("the admin surface needs an admin token")
        if not claims.admin:
            raise InsufficientScopeError("this token does not grant the admin surface")

    def _admin_elsewhere(self, conn: HTTPConnection) -> ApiError:
        return ApiError(
            404,
            "not_found",
            f"no route for {conn.url.path[:100]} here: the admin surface is served on the "
            "admin port (--admin-port), on loopback",
        )


def _on_admin_port(conn: HTTPConnection) -> bool:
    return conn.scope.get(ADMIN_SCOPE) is True


def _bounded(token: str) -> str:
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(f"token over {MAX_TOKEN_LENGTH} characters")
    return token


def _require(grant: TopicGrant, topics: Iterable[str], action: str) -> None:
    for topic in topics:
        if not grant.allows(topic):
            raise InsufficientScopeError(f"the token does not grant {action} on {topic[:100]!r}")
