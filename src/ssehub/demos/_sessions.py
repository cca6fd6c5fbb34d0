"""Who owns a chat answer: the browser session that started it.

A browser gets a random session id in an ``HttpOnly; SameSite=Strict``
cookie (``Secure`` over HTTPS) the first time it asks for an answer.  An
answer records only a hash of it (its *owner*, in the answer's ``connected``
event), so the store never holds a usable session id and every node (or a
restarted hub) can check ownership.  A request whose session does not own an
answer is told the answer does not exist (``404``): it learns nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from starlette.requests import HTTPConnection
from starlette.responses import Response

__all__ = ["SESSION_COOKIE", "Session", "client_address", "session_of"]

#: The chat demo's session cookie.
SESSION_COOKIE = "ssehub_chat"
_SESSION = re.compile(r"[0-9a-f]{32}")
#: A session cookie lives a week (the answers it owns may be read again until then).
MAX_AGE = 7 * 24 * 3600


class Session:
    """A browser's session: its id, its owner hash, and whether the cookie must be set."""

    def __init__(self, session_id: str, *, new: bool) -> None:
        self.id = session_id
        self.new = new
        self.owner = hashlib.sha256(f"ssehub-chat:{session_id}".encode()).hexdigest()[:32]

    def owns(self, owner: str) -> bool:
        """Whether this session started the answer whose owner hash is ``owner``."""
        return bool(owner) and secrets.compare_digest(owner, self.owner)

    def set_cookie(self, response: Response, conn: HTTPConnection) -> None:
        """Give a new session's cookie to the browser (nothing for a known one)."""
        if self.new:
            response.set_cookie(
                SESSION_COOKIE,
                self.id,
                max_age=MAX_AGE,
                path="/",
                httponly=True,
                samesite="strict",
                secure=conn.url.scheme == "https",
            )

    def cookie_headers(self, conn: HTTPConnection) -> dict[str, str]:
        """:meth:`set_cookie` as headers, for responses that take a header mapping."""
        response = Response()
        self.set_cookie(response, conn)
        cookie = response.headers.get("set-cookie")
        return {"set-cookie": cookie} if cookie else {}


def session_of(conn: HTTPConnection, *, create: bool = False) -> Session | None:
    """The request's session (a new one with ``create``; ``None`` without a valid cookie)."""
    value = conn.cookies.get(SESSION_COOKIE, "")
    if _SESSION.fullmatch(value):
        return Session(value, new=False)
    return Session(secrets.token_hex(16), new=True) if create else None


def client_address(conn: HTTPConnection) -> str:
    """The client's address, the key of the per-address limit (``""``: unknown)."""
    return conn.client.host if conn.client is not None else ""
