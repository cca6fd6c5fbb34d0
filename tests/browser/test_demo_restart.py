"""Every demo page recovers by itself when the hub restarts (same port, same SQLite store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import FAST_ENV, PageProblems
from tests.support.processes import free_port, start_hub

pytestmark = pytest.mark.browser

#: A restarted hub tells browsers to come back within 1-10 s (jittered), plus its start-up.
RECOVERY = 60_000


def _points(page: Any) -> int:
    return int(page.locator("#chart").get_attribute("data-points") or 0)


def test_ticker_logs_and_dashboard_reconnect_and_go_on_after_a_restart(
    browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    log = tmp_path / "服务.log"
    log.write_text("", encoding="utf-8")
    port = free_port()
    # --tail-lines 0: like tail -n, a restarted hub publishes the file's last N lines again,
    # which a page that resumed across the restart would show twice; this test is about resume
    args = ["--store", f"sqlite:{tmp_path / 'hub.db'}", "--tail", str(log), "--tail-lines", "0"]
    context = browser.new_context()
    try:
        ticker, logs, dashboard = (context.new_page() for _ in range(3))
        pages = {"ticker": ticker, "logs": logs, "dashboard": dashboard}
        with start_hub(args, port=port, env=FAST_ENV, log_dir=tmp_path) as first:
            problems = {name: PageProblems(p, first.url) for name, p in pages.items()}
            for name, p in pages.items():
                p.goto(f"{first.url}/{name}")
                expect(p.locator("#conn")).to_have_attribute("data-state", "open", timeout=20_000)
            with open(log, "a", encoding="utf-8") as f:
                f.write("INFO 重启之前 before the restart\n")
            expect(logs.locator(".line:not(.notice)")).to_have_count(1, timeout=20_000)
            boot = dashboard.locator("#node").text_content()
            first.terminate()
            for p in pages.values():
                expect(p.locator("#conn")).to_have_attribute(
                    "data-state", "reconnecting", timeout=20_000
                )
            points_while_down = _points(ticker)

        with start_hub(args, port=port, env=FAST_ENV, log_dir=tmp_path):
            for p in pages.values():
                expect(p.locator("#conn")).to_have_attribute("data-state", "open", timeout=RECOVERY)
            ticker.wait_for_function(
                f"() => Number(document.querySelector('#chart').dataset.points) > "
                f"{points_while_down}",
                timeout=20_000,
            )
            with open(log, "a", encoding="utf-8") as f:
                f.write("WARNING 重启之后 after the restart\n")
            expect(logs.locator(".line:not(.notice) .x")).to_have_text(
                ["INFO 重启之前 before the restart", "WARNING 重启之后 after the restart"],
                timeout=20_000,
            )
            expect(dashboard.locator("#node")).not_to_have_text(boot or "", timeout=20_000)
            ticker.screenshot(path=artifacts / "restart-ticker.png")
            logs.screenshot(path=artifacts / "restart-logs.png")
        # connection errors while the hub was down are expected; nothing else may fail
        for name, found in problems.items():
            unexpected = [e for e in found.errors if "ERR_CONNECTION_REFUSED" not in e]
            assert [e for e in unexpected if "Failed to load resource" not in e] == [], name
    finally:
        context.close()


def test_a_chat_answer_cut_by_a_restart_says_so_and_the_chat_goes_on(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {**FAST_ENV, "SSEHUB_CHAT_TOKEN_DELAY": "0.2"}
    args = ["--store", f"sqlite:{tmp_path / 'hub.db'}", "--no-ticker"]
    with start_hub(args, port=port, env=env, log_dir=tmp_path) as first:
        page.goto(f"{first.url}/chat")
        page.locator("#message").fill("一个会被打断的回答")
        page.locator("#message").press("Enter")
        turn = page.locator(".turn")
        expect(turn.locator(".answer-text")).not_to_be_empty(timeout=20_000)
        first.terminate()
    with start_hub(args, port=port, env=FAST_ENV, log_dir=tmp_path):
        expect(turn).to_have_attribute("data-status", "error", timeout=RECOVERY)
        expect(turn.locator(".error-box")).to_contain_text("interrupted")
        expect(page.locator("#send")).to_be_visible()
        page.locator("#message").fill("再问一次")
        page.locator("#message").press("Enter")
        expect(page.locator(".turn").last).to_have_attribute("data-status", "done", timeout=20_000)
        page.screenshot(path=artifacts / "restart-chat.png")


def test_a_chat_answer_lost_with_an_in_memory_store_is_reported_not_awaited(
    page: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = {**FAST_ENV, "SSEHUB_CHAT_TOKEN_DELAY": "0.2"}
    args = ["--store", "memory", "--no-ticker"]
    with start_hub(args, port=port, env=env, log_dir=tmp_path) as first:
        page.goto(f"{first.url}/chat")
        page.locator("#message").fill("内存里的回答")
        page.locator("#message").press("Enter")
        turn = page.locator(".turn")
        expect(turn.locator(".answer-text")).not_to_be_empty(timeout=20_000)
        first.terminate()
    with start_hub(args, port=port, env=FAST_ENV, log_dir=tmp_path):
        expect(turn).to_have_attribute("data-status", "error", timeout=RECOVERY)
        expect(turn.locator(".error-box")).to_contain_text("lost in a restart")
        expect(page.locator("#conn")).to_have_attribute("data-state", "idle")
