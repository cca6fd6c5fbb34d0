"""Request bodies read with a byte bound (``--max-body``): ``413`` above it, never buffered past."""

from __future__ import annotations

from starlette.requests import Request

from ._errors import ApiError

__all__ = ["read_body"]


async def read_body(request: Request, limit: int) -> bytes:
    """The body of ``request``; ``413 payload_too_large`` as soon as it is over ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before anything is read.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"body over the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "payload_too_large", f"body over the limit of {limit} bytes")
    return bytes(body)
