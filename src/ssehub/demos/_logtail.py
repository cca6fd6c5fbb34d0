"""The log-tail demo: follow the files named at start-up like ``tail -F``.

Only the paths given to ``ssehub serve --tail FILE`` are ever opened; requests
name files by their index (topic ``logs/<n>``), never by path, and
``GET /logs/files`` shows base names only.

:class:`FileTailer` is the sans-asyncio core: each :meth:`FileTailer.poll`
stats the path and reads what was appended since the last poll, returning
:class:`TailItem` s.  Conventions, as ``tail -F``:

* It starts at the end of a file that exists at start-up, and at the
  beginning of a file that appears later (or replaces the old one).
* Rotation (the path now names another inode, or was removed): the rest of the
  old file is read through the still-open handle, then the new file from 0.
* Truncation (the size shrank below the read position): read again from 0.
* Lines end at LF; a CR before it is dropped.  A partial last line is held
  until its LF arrives (or the file is rotated or truncated).  Bytes are
  decoded as UTF-8 with U+FFFD replacement, after splitting, so a character is
  never cut; lines longer than ``max_line`` bytes are split at a character
  boundary.  At most ``max_read`` bytes are read per poll, so a huge append is
  spread over several polls instead of filling memory.

:class:`LogTail` polls every tailer every ``interval`` seconds and publishes
``log`` events ``{"file", "name", "time", "line", "level"}`` and ``notice``
events ``{"file", "name", "time", "message"}`` (rotated, truncated, missing) to ``logs/<n>``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import HubError
from ..hub import Hub
from ._config import RecentCursor

__all__ = ["FileTailer", "LogTail", "TailItem", "guess_level"]

logger = logging.getLogger("ssehub.demos")

_LEVELS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("critical", re.compile(r"\b(?:CRITICAL|FATAL|PANIC|EMERG(?:ENCY)?)\b|严重|致命", re.I)),
    (
        "error",
        re.compile(r"\b(?:ERROR|ERR|FAILED|FAILURE|EXCEPTION|Traceback)\b|错误|失败|异常", re.I),
    ),
    ("warning", re.compile(r"\bWARN(?:ING)?\b|警告", re.I)),
    ("info", re.compile(r"\b(?:INFO|NOTICE)\b|信息", re.I)),
    ("debug", re.compile(r"\b(?:DEBUG|TRACE)\b|调试", re.I)),
)


def guess_level(line: str) -> str:
    """The level a log line names first (``critical`` … ``debug``), else ``plain``."""
    best, where = "plain", len(line) + 1
    for level, pattern in _LEVELS:
        match = pattern.search(line)
        if match is not None and match.start() < where:
            best, where = level, match.start()
    return best


@dataclass(frozen=True, slots=True)
class TailItem:
    """What a poll found: a ``line`` of the file, or a ``notice`` about the file."""

    kind: Literal["line", "notice"]
    text: str


class FileTailer:
    """Follows one path like ``tail -F`` (see the module docstring); not thread-safe."""

    def __init__(self, path: str, *, max_line: int = 16 * 1024, max_read: int = 1 << 20) -> None:
        self.path = path
        self.max_line = max_line
        self.max_read = max_read
        self._file: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        self._pos = 0
        self._partial = b""
        self._started = False
        self._missing_told = False

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def poll(self) -> list[TailItem]:
        """Read what changed since the last poll."""
        items: list[TailItem] = []
        try:
            st: os.stat_result | None = os.stat(self.path)
        except OSError:
            st = None
        first = not self._started
        self._started = True
        if self._file is not None:
            if st is None or (st.st_dev, st.st_ino) != self._identity:
                items += self._drain()
                items += self._flush_partial()
                self.close()
                if st is None:
                    items.append(TailItem("notice", "文件已移走，等待新文件（file moved away）"))
                    self._missing_told = True
                    return items
                items.append(TailItem("notice", "文件已轮转，从头读取新文件（file rotated）"))
                return items + self._open(st, at_end=False)
            if st.st_size < self._pos:
                items += self._flush_partial()
                self._file.seek(0)
                self._pos = 0
                items.append(TailItem("notice", "文件被截断，从头读取（file truncated）"))
            return items + self._read()
        if st is None:
            if not self._missing_told:
                self._missing_told = True
                items.append(TailItem("notice", "文件不存在，等待它出现（file not found yet）"))
            return items
        if not first:
            items.append(TailItem("notice", "文件出现了，从头读取（file appeared）"))
        return items + self._open(st, at_end=first)

    def _open(self, st: os.stat_result, *, at_end: bool) -> list[TailItem]:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115  (kept open across polls)
        except OSError as exc:
            return [TailItem("notice", f"无法打开文件（cannot open: {exc.strerror}）")]
        fst = os.fstat(handle.fileno())
        self._file = handle
        self._identity = (fst.st_dev, fst.st_ino)
        self._missing_told = False
        self._partial = b""
        self._pos = fst.st_size if at_end else 0
        handle.seek(self._pos)
        return [] if at_end else self._read()

    def _drain(self, max_reads: int = 64) -> list[TailItem]:
        """Everything left in the open file (at most ``max_reads`` reads)."""
        items: list[TailItem] = []
        for _ in range(max_reads):
            before = self._pos
            items += self._read()
            if self._pos == before:
                break
        return items

    def _read(self) -> list[TailItem]:
        assert self._file is not None
        data = self._file.read(self.max_read)
        if not data:
            return []
        self._pos += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        items = [item for line in lines for item in self._line(line)]
        while len(self._partial) > self.max_line:
            cut = _char_boundary(self._partial, self.max_line)
            items.append(TailItem("line", self._partial[:cut].decode("utf-8", "replace")))
            self._partial = self._partial[cut:]
        return items

    def _flush_partial(self) -> list[TailItem]:
        partial, self._partial = self._partial, b""
        return self._line(partial) if partial else []

    def _line(self, raw: bytes) -> list[TailItem]:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        items = []
        while len(raw) > self.max_line:
            cut = _char_boundary(raw, self.max_line)
            items.append(TailItem("line", raw[:cut].decode("utf-8", "replace")))
            raw = raw[cut:]
        items.append(TailItem("line", raw.decode("utf-8", "replace")))
        return items


def _char_boundary(data: bytes, limit: int) -> int:
    """The largest cut ``<= limit`` that does not split a UTF-8 sequence (``limit`` if none)."""
    cut = limit
    while cut > limit - 4 and cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > 0 and (data[cut] & 0xC0) != 0x80 else limit


def display_names(paths: tuple[str, ...]) -> list[str]:
    """Base names of ``paths``, made unique with `` (2)``, `` (3)``…"""
    names: list[str] = []
    for path in paths:
        base = os.path.basename(path) or path
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base} ({n})"
        names.append(name)
    return names


class LogTail:
    """Polls every configured file and publishes what it finds to ``logs/<n>``."""

    def __init__(
        self,
        hub: Hub,
        paths: tuple[str, ...],
        *,
        interval: float = 0.25,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self._wall_clock = wall_clock
        self.paths = tuple(os.path.abspath(p) for p in paths)
        self.names = display_names(self.paths)
        self.interval = interval
        self.tailers = [FileTailer(p) for p in self.paths]
        self.recent = RecentCursor(300)

    async def poll_all(self) -> int:
        """Poll each file once and publish; return how many events were published."""
        published = 0
        for index, tailer in enumerate(self.tailers):
            items = await asyncio.to_thread(tailer.poll)
            for item in items:
                await self._publish(index, item)
                published += 1
        return published

    async def _publish(self, index: int, item: TailItem) -> None:
        base: dict[str, object] = {
            "file": index,
            "name": self.names[index],
            "time": round(self._wall_clock(), 3),
        }
        if item.kind == "line":
            payload = {**base, "line": item.text, "level": guess_level(item.text)}
            event = "log"
        else:
            payload = {**base, "message": item.text}
            event = "notice"
        result = await self.hub.publish(
            f"logs/{index}", json.dumps(payload, ensure_ascii=False), event
        )
        if item.kind == "line":
            self.recent.add(result.seq)

    async def run(self) -> None:
        """Poll every ``interval`` seconds until cancelled."""
        try:
            while True:
                try:
                    await self.poll_all()
                except HubError as exc:
                    logger.warning("log tail: lines not published: %s", exc)
                await asyncio.sleep(self.interval)
        finally:
            for tailer in self.tailers:
                tailer.close()

    def routes(self) -> list[BaseRoute]:
        return [Route("/logs/files", self.files_endpoint, methods=["GET"])]

    async def files_endpoint(self, request: Request) -> Response:
        return JSONResponse(
            {
                "files": [
                    {"index": i, "name": name, "topic": f"logs/{i}"}
                    for i, name in enumerate(self.names)
                ],
                "since": self.recent.since(self.hub),
            }
        )
