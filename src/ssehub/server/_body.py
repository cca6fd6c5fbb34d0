"""Request bodies read with a byte bound (``--max-body``): ``413`` above it, never buffered past."""

from __future__ import annotations

from starlette.requests import Request

from ._errors import ApiError

__all__ = ["read_body"]


async def read_body(request: Request, limit: int, *, drain: int = 0) -> bytes:
    """The body of ``request``; ``413 payload_too_large`` as soon as it is over ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before anything is read.
    With ``drain``, an oversized body is first read on and dropped, up to ``drain``
    bytes in all, so a client still sending gets the 413 rather than a connection
    closed under it (fetch in Node reports only "other side closed").
    """
    too_large = ApiError(413, "payload_too_large", f"body over the limit of {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max(limit, drain):
        raise too_large
    body = bytearray()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            body.clear()
            if size > drain:
                raise too_large
            continue
        body += chunk
    if size > limit:
        raise too_large
    return bytes(body)
