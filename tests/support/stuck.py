"""A connection whose client stopped reading, for tests of write deadlines.

:class:`StuckWriter` takes ``accept`` writes, then blocks every further write
until :meth:`StuckWriter.abort` (the reset) makes it fail with ``OSError``.
:class:`StuckClient` is the same seen from ASGI: body sends block.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ssehub.server._stream import ABORT_EXTENSION

__all__ = ["StuckClient", "StuckWriter"]


class StuckWriter:
    """A connection whose client stopped reading: every write after ``accept`` blocks."""

    def __init__(self, accept: int = 1) -> None:
        self.accept = accept
        self.written: list[bytes] = []
        self.aborts = 0
        self._gate: asyncio.Future[None] | None = None

    async def write(self, chunk: bytes) -> None:
        if len(self.written) >= self.accept:
            self._gate = asyncio.get_running_loop().create_future()
            await self._gate  # released only by abort (a reset makes the write fail)
        self.written.append(chunk)

    def abort(self) -> None:
        self.aborts += 1
        if self._gate is not None and not self._gate.done():
            self._gate.set_exception(OSError("connection reset"))

    @property
    def blocked(self) -> bool:
        return self._gate is not None and not self._gate.done()


class StuckClient(StuckWriter):
    """An ASGI server side whose client stopped reading: body sends after ``accept`` block."""

    @property
    def bodies(self) -> list[bytes]:
        return self.written

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.body":
            await self.write(message["body"])

    async def receive(self) -> Any:
        await asyncio.Event().wait()  # the client never sends anything more

    def scope(self, *, abort: bool) -> dict[str, Any]:
        extensions: dict[str, Any] = {ABORT_EXTENSION: self.abort} if abort else {}
        return {"type": "http", "asgi": {"spec_version": "2.3"}, "extensions": extensions}
