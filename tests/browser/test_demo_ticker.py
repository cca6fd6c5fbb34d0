"""The ticker page in Chromium: live prices with up/down colours and a chart that moves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from ssehub.demos._ticker import DEFAULT_SYMBOLS
from tests.support.browser import FAST_ENV, WAIT, PageProblems
from tests.support.processes import start_hub

pytestmark = pytest.mark.browser
_PRICE = re.compile(r"^\d[\d,]*\.\d\d$")
_SELECTED = re.compile(r"\bselected\b")
_UP = re.compile(r"\bup\b")


def _points(page: Any, selector: str) -> int:
    return int(page.locator(selector).get_attribute("data-points") or 0)


def test_prices_update_with_colours_and_the_chart_grows(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    with start_hub(["--store", "memory"], env=FAST_ENV, log_dir=tmp_path) as hub:
        problems = PageProblems(page, hub.url)
        page.goto(f"{hub.url}/ticker")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT)
        cards = page.locator(".quote")
        expect(cards).to_have_count(len(DEFAULT_SYMBOLS), timeout=WAIT)
        for s in DEFAULT_SYMBOLS:
            card = page.locator(f'.quote[data-symbol="{s.symbol}"]')
            expect(card.locator(".name")).to_have_text(s.name)
            expect(card.locator(".price")).to_have_text(_PRICE, timeout=WAIT)
        page.wait_for_function(
            "() => Number(document.querySelector('#chart').dataset.points) >= 5", timeout=WAIT
        )
        before = _points(page, "#chart")
        page.wait_for_function(
            f"() => Number(document.querySelector('#chart').dataset.points) > {before}",
            timeout=WAIT,
        )
        # some symbol has moved away from its opening price by now: it is coloured
        expect(page.locator(".quote .change.up, .quote .change.down").first).to_be_visible(
            timeout=WAIT
        )
        page.locator('.quote[data-symbol="TSLA"]').click()
        expect(page.locator("#chart-title")).to_have_text("TSLA 特斯拉 Tesla")
        expect(page.locator('.quote[data-symbol="TSLA"]')).to_have_class(_SELECTED)
        page.locator("#colors").click()
        expect(page.locator("body")).to_have_class("red-up")
        page.locator("#colors").click()
        page.screenshot(path=artifacts / "ticker.png")
        assert problems.errors == []


def test_prices_published_by_another_program_are_shown(page: Any, tmp_path: Path) -> None:
    with start_hub(["--store", "memory", "--no-ticker"], env=FAST_ENV, log_dir=tmp_path) as hub:
        page.goto(f"{hub.url}/ticker?symbols=ZZZ")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT)
        expect(page.locator("#note")).to_contain_text("--no-ticker")
        for price in (40.0, 42.5):
            body = {"event": "price", "data": {"symbol": "ZZZ", "price": price, "name": "测试股"}}
            response = httpx.post(f"{hub.url}/topics/ticker/ZZZ", json=body, timeout=10)
            assert response.status_code == 201
        card = page.locator('.quote[data-symbol="ZZZ"]')
        expect(card.locator(".price")).to_have_text("42.50", timeout=WAIT)
        expect(card.locator(".name")).to_have_text("测试股")
        expect(card.locator(".change")).to_have_class(_UP)
        expect(card.locator(".change")).to_contain_text("+6.25%")


def test_the_symbol_comes_from_the_topic_not_from_the_data(page: Any, tmp_path: Path) -> None:
    """Issue 9, finding 16: an event on ticker/AAPL saying ``symbol: MSFT`` moved MSFT."""
    with start_hub(["--store", "memory", "--no-ticker"], env=FAST_ENV, log_dir=tmp_path) as hub:
        problems = PageProblems(page, hub.url)
        page.goto(f"{hub.url}/ticker")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT)
        forged = {"event": "price", "data": {"symbol": "MSFT", "price": 1.23, "name": "假的"}}
        response = httpx.post(f"{hub.url}/topics/ticker/AAPL", json=forged, timeout=10)
        assert response.status_code == 201
        aapl = page.locator('.quote[data-symbol="AAPL"]')
        msft = page.locator('.quote[data-symbol="MSFT"]')
        expect(aapl.locator(".price")).to_have_text("1.23", timeout=WAIT)
        expect(msft.locator(".price")).to_have_text("–")
        # a symbol nobody subscribed to gets no card, whatever its data says
        other = {"event": "price", "data": {"symbol": "AAPL", "price": 9.99}}
        assert httpx.post(f"{hub.url}/topics/ticker/EVIL", json=other, timeout=10).is_success
        real = {"event": "price", "data": {"symbol": "MSFT", "price": 420.5}}
        assert httpx.post(f"{hub.url}/topics/ticker/MSFT", json=real, timeout=10).is_success
        expect(msft.locator(".price")).to_have_text("420.50", timeout=WAIT)
        expect(aapl.locator(".price")).to_have_text("1.23")
        expect(page.locator('.quote[data-symbol="EVIL"]')).to_have_count(0)
        assert problems.errors == []
