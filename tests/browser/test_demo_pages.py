"""Every demo page in Chromium: it loads offline (nothing outside the hub is fetched) and cleanly.

Also holds the helpers the other ``test_demo_*`` browser modules share.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.processes import HubProcess, start_hub

pytestmark = pytest.mark.browser

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

#: Each page and the state its connection badge settles in.
PAGES = {
    "/": "open",
    "/test.html": "closed",
    "/chat": "idle",
    "/ticker": "open",
    "/logs": "open",
    "/dashboard": "open",
}


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


@pytest.fixture
def demo_hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A hub with every demo lively: fast knobs, a followed log file with Chinese lines."""
    log = tmp_path / "应用.log"
    log.write_text("INFO 启动\n", encoding="utf-8")
    args = ["--store", "memory", "--tail", str(log), "--demo-interval", "0.1"]
    with start_hub(args, env=FAST_ENV, log_dir=tmp_path) as hub:
        yield hub


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_offline_with_no_console_errors(
    demo_hub: HubProcess, page: Any, path: str
) -> None:
    problems = PageProblems(page, demo_hub.url)
    page.goto(demo_hub.url + path, wait_until="load")
    expect(page.locator(".conn")).to_have_attribute("data-state", PAGES[path], timeout=WAIT)
    assert problems.foreign == []
    assert problems.errors == []


@pytest.mark.parametrize("path", list(PAGES)[1:])
def test_demo_pages_forbid_everything_outside_the_hub(demo_hub: HubProcess, path: str) -> None:
    response = httpx.get(demo_hub.url + path, headers={"Accept": "text/html"}, timeout=10)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", response.text) is None
