"""The log-tail demo: follow the files named at start-up like ``tail -F``.

Only the paths given to ``ssehub serve --tail FILE`` are ever opened; requests
name files by their index (topic ``logs/<n>``), never by path, and
``GET /logs/files`` shows base names only.

:class:`FileTailer` (``_tailer``) follows one path like ``tail -F``, and
opens nothing but a regular file of the same directory and owner (never a
symlink, FIFO, device or directory planted at rotation time).

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

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import HubError
from ..hub import Hub
from ._config import RecentCursor
from ._tailer import FileTailer, TailItem

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
        tail_lines: int = 0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self._wall_clock = wall_clock
        self.paths = tuple(os.path.abspath(p) for p in paths)
        self.names = display_names(self.paths)
        self.interval = interval
        self.tailers = [FileTailer(p, tail_lines=tail_lines) for p in self.paths]
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
