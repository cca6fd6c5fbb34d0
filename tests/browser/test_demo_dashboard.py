"""The dashboard in Chromium: its counters and charts move with the hub's traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import FAST_ENV, WAIT, PageProblems
from tests.support.processes import start_hub

pytestmark = pytest.mark.browser


def _number(page: Any, selector: str) -> float:
    return float((page.locator(selector).text_content() or "nan").replace(",", ""))


def test_counters_move_with_published_and_delivered_events(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    with start_hub(["--store", "memory", "--no-ticker"], env=FAST_ENV, log_dir=tmp_path) as hub:
        problems = PageProblems(page, hub.url)
        page.goto(f"{hub.url}/dashboard")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT)
        expect(page.locator("#k-streams")).to_have_text("1", timeout=WAIT)  # this dashboard
        expect(page.locator("#k-watchers")).to_contain_text("1")
        assert _number(page, "#k-prate") == 0.0  # its own stats events are not counted

        # a subscriber to a Chinese topic, in the page itself, and a publisher
        page.evaluate("() => { window.sub = new EventSource('topics/新闻/国内'); }")
        expect(page.locator("#k-streams")).to_have_text("2", timeout=WAIT)
        for i in range(30):
            body = {"data": f"第 {i} 条", "event": "news"}
            assert (
                httpx.post(f"{hub.url}/topics/新闻/国内", json=body, timeout=10).status_code == 201
            )
        row = page.locator('#topics tr[data-topic="新闻/国内"]')
        expect(row.locator(".published")).to_have_text("30", timeout=WAIT)
        expect(row.locator(".delivered")).to_have_text("30", timeout=WAIT)
        expect(row.locator(".subscribers")).to_have_text("1")
        expect(page.locator("#k-published")).to_contain_text("30", timeout=WAIT)
        page.wait_for_function(
            "() => Number(document.querySelector('#chart-rates').dataset.points) >= 3",
            timeout=WAIT,
        )
        page.screenshot(path=artifacts / "dashboard.png")
        page.evaluate("() => window.sub.close()")
        expect(page.locator("#k-streams")).to_have_text("1", timeout=WAIT)
        assert problems.errors == []


def _forged_samples(real: dict[str, Any]) -> list[Any]:
    """Samples anybody can publish to ssehub/stats: wrong shapes, strings, absurd numbers."""
    return [
        "not even json",
        [1, 2, 3],
        {"n": "1", "boot": real["boot"]},
        {**real, "n": 10**15},  # far ahead: the page waited for n > 10**15 forever
        {**real, "n": real["n"] + 10**6, "open_streams": 1e300},
        {**real, "n": real["n"] + 10**6 + 1, "topics": "abc"},  # s.topics.map threw
        {**real, "n": real["n"] + 10**6 + 2, "published": "many"},
        {**real, "n": real["n"] + 10**6 + 3, "topics": [{"topic": 5}]},
        {**real, "n": real["n"] + 10**6 + 4, "topics": [{"topic": "x"}] * 10_000},
        {**real, "n": 10**11},  # a valid shape far ahead must not freeze the page either
    ]


def test_forged_stats_samples_are_skipped_and_the_dashboard_keeps_moving(
    page: Any, tmp_path: Path
) -> None:
    """Issue 9, finding 16: one forged ``ssehub/stats`` sample froze every open dashboard."""
    with start_hub(["--store", "memory", "--no-ticker"], env=FAST_ENV, log_dir=tmp_path) as hub:
        problems = PageProblems(page, hub.url)
        page.goto(f"{hub.url}/dashboard")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT)
        expect(page.locator("#k-streams")).to_have_text("1", timeout=WAIT)
        real = httpx.get(f"{hub.url}/dashboard/recent", timeout=10).json()["samples"][-1]
        for forged in _forged_samples(real):
            body = {"event": "stats", "data": forged}
            answer = httpx.post(f"{hub.url}/topics/ssehub/stats", json=body, timeout=10)
            assert answer.status_code == 201
        for i in range(7):
            body = {"data": f"第 {i} 条"}
            assert httpx.post(f"{hub.url}/topics/news", json=body, timeout=10).status_code == 201
        # real samples are still drawn after the forged ones
        expect(page.locator("#k-published")).to_contain_text("共 7 total", timeout=WAIT)
        expect(page.locator('#topics tr[data-topic="news"] .published')).to_have_text("7")
        expect(page.locator("#k-streams")).to_have_text("1")
        expect(page.locator("#topics")).not_to_contain_text("abc")
        assert problems.errors == []
