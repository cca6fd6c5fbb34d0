"""``GET /ssehub.js``: the browser client, one ES module shipped in ``ssehub/web``.

The file is read once, on the first request, and answered with
``application/javascript; charset=utf-8``, a strong ``ETag`` (a hash of its
bytes) and ``Cache-Control: no-cache``: a browser keeps its copy and
revalidates it, and a matching ``If-None-Match`` gets ``304`` with no body, so
a hub upgrade reaches every page at once.  ``HEAD`` is answered too.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["CLIENT_SCRIPT_PATH", "client_script"]

#: Where every hub serves the client.
CLIENT_SCRIPT_PATH = "/ssehub.js"

_MEDIA_TYPE = "application/javascript; charset=utf-8"


@cache
def _script() -> tuple[bytes, str]:
    body = resources.files("ssehub.web").joinpath("ssehub.js").read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(header: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    for candidate in header.split(","):
        value = candidate.strip()
        if value == "*" or value.removeprefix("W/") == etag:
            return True
    return False


async def client_script(request: Request) -> Response:
    """The client module, or ``304`` when the browser's copy is current."""
    body, etag = _script()
    headers = {
        "ETag": etag,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=_MEDIA_TYPE, headers=headers)
