"""Every demo page in Chromium: it loads offline (nothing from outside the hub) and cleanly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import FAST_ENV, WAIT, PageProblems
from tests.support.processes import HubProcess, start_hub

pytestmark = pytest.mark.browser

#: Each page and the state its connection badge settles in.
PAGES = {
    "/": "open",
    "/test.html": "closed",
    "/chat": "idle",
    "/ticker": "open",
    "/logs": "open",
    "/dashboard": "open",
}


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


#: What each page shows once it has data: a phone layout is judged with the data in it.
FILLED = {
    "/": "#health[data-state=open]",
    "/test.html": "li.done",
    "/chat": ".suggestion",
    "/ticker": ".quote .price:not(:empty)",
    "/logs": ".line",
    "/dashboard": "#topics td.topic",
}


@pytest.mark.parametrize("path", PAGES)
def test_no_page_scrolls_sideways_on_a_360_px_phone(
    demo_hub: HubProcess, browser: Any, artifacts: Path, path: str
) -> None:
    """The nav, the badge, the 红涨绿跌 button and the dashboard's table fit a phone's width.

    Screenshots at 360 px and 1280 px land in ``test-artifacts/`` (``layout-*.png``).
    """
    name = path.strip("/").removesuffix(".html") or "index"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(demo_hub.url + path)
        page.locator(FILLED[path]).first.wait_for(state="attached", timeout=WAIT)
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 800})
            page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
            page.screenshot(path=artifacts / f"layout-{name}-{width}.png", full_page=True)
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert scroll <= inner, (width, scroll)
    finally:
        context.close()


@pytest.mark.parametrize("path", list(PAGES)[1:])
def test_demo_pages_forbid_everything_outside_the_hub(demo_hub: HubProcess, path: str) -> None:
    response = httpx.get(demo_hub.url + path, headers={"Accept": "text/html"}, timeout=10)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", response.text) is None
