"""Helpers the Chromium tests share: demo knobs, the wait bound, and a page's problems."""

from __future__ import annotations

from typing import Any

__all__ = ["FAST_ENV", "WAIT", "PageProblems"]

#: Demo knobs that make the pages lively in tests (seconds).
FAST_ENV = {
    "SSEHUB_CHAT_TOKEN_DELAY": "0.01",
    "SSEHUB_CHAT_THINK_DELAY": "0.05",
    "SSEHUB_TICKER_INTERVAL": "0.2",
    "SSEHUB_STATS_INTERVAL": "0.25",
    "SSEHUB_TAIL_INTERVAL": "0.1",
}

#: How long a page may take to show something (ms): bounded, generous for a busy machine.
WAIT = 20_000


class PageProblems:
    """Console errors, page errors and requests that left the hub's origin."""

    def __init__(self, page: Any, origin: str) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

        def route(route: Any) -> None:
            url = route.request.url
            if url.startswith(origin) or url.startswith("data:"):
                route.continue_()
            else:
                self.foreign.append(url)
                route.abort()

        page.route("**/*", route)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")
