"""The seed's test page in Chromium: the four listeners on the demo stream ``GET /``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import WAIT, PageProblems
from tests.support.processes import start_hub

pytestmark = pytest.mark.browser

SEED_LINES = [
    "已连接: 服务器连接成功",
    "思考: 正在分析问题",
    "思考: 搜索知识库",
    "内容: 这是流式输出的一部分",
    "内容: 这是流式输出的下一部分",
    "完成: 完成",
]


def test_each_seed_event_appears_and_the_page_closes_on_done(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    with start_hub(["--store", "memory", "--demo-interval", "0.3"], log_dir=tmp_path) as hub:
        problems = PageProblems(page, hub.url)
        page.goto(f"{hub.url}/test.html")
        items = page.locator("#output li")
        expect(items.first).to_have_attribute("data-type", "connected", timeout=WAIT)
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        expect(items.locator(".text")).to_have_text(SEED_LINES, timeout=WAIT)
        expect(page.locator("#conn")).to_have_attribute("data-state", "closed")
        types = [items.nth(i).get_attribute("data-type") for i in range(6)]
        assert types == ["connected", "thinking", "thinking", "content", "content", "done"]
        page.screenshot(path=artifacts / "test-page.png")
        # "Run again" opens a fresh stream and shows the six events again
        page.locator("#again").click()
        expect(items.locator(".text")).to_have_text(SEED_LINES, timeout=WAIT)
        assert problems.errors == []
