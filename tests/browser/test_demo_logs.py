"""The log-tail page in Chromium: appended lines appear live, coloured by level, filterable;
truncation and rotation are followed like ``tail -F``."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import FAST_ENV, WAIT, PageProblems
from tests.support.processes import start_hub

pytestmark = pytest.mark.browser


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def test_appended_lines_appear_coloured_and_the_filter_narrows_them(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    app, worker = tmp_path / "app.log", tmp_path / "工作.log"
    app.write_text("INFO already there before the hub started\n", encoding="utf-8")
    worker.write_text("", encoding="utf-8")
    # --tail-lines 0: only new lines (the last lines at start are tested below)
    args = ["--store", "memory", "--tail", str(app), "--tail", str(worker), "--tail-lines", "0"]
    with start_hub(args, env=FAST_ENV, log_dir=tmp_path) as hub:
        problems = PageProblems(page, hub.url)
        page.goto(f"{hub.url}/logs")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT)
        expect(page.locator(".file-chip")).to_have_text(["app.log", "工作.log"])
        _append(app, "2024-05-01 12:00:00 INFO 服务启动 server started\n")
        _append(app, "2024-05-01 12:00:01 WARNING 磁盘空间不足 disk almost full\n")
        _append(worker, "2024-05-01 12:00:02 ERROR 数据库连接失败 db connection refused\n")
        _append(worker, "2024-05-01 12:00:03 DEBUG 心跳 tick\n")
        _append(app, "2024-05-01 12:00:04 CRITICAL 崩溃 crash\n")
        lines = page.locator(".line:not(.notice)")
        expect(lines).to_have_count(5, timeout=WAIT)
        expect(page.locator(".line.info .x")).to_have_text(
            "2024-05-01 12:00:00 INFO 服务启动 server started"
        )
        expect(page.locator(".line.warning")).to_have_count(1)
        expect(page.locator(".line.error .f")).to_have_text("工作.log")
        expect(page.locator(".line.critical")).to_have_count(1)
        assert "already there" not in (page.locator("#lines").text_content() or "")

        page.locator("#filter").fill("数据库")
        visible = page.locator(".line:not(.hidden)")
        expect(visible).to_have_count(1)
        expect(visible.locator("mark")).to_have_text("数据库")
        page.locator("#filter").fill("/disk|crash/")
        expect(visible).to_have_count(2)
        page.locator("#filter").fill("")
        page.locator("#level").select_option("error")
        expect(visible).to_have_count(2)  # error and critical
        page.locator("#level").select_option("all")
        page.locator('.file-chip[data-file="1"]').click()
        expect(visible).to_have_count(3)  # app.log only
        page.locator('.file-chip[data-file="1"]').click()
        expect(visible).to_have_count(5)

        _append(worker, "2024-05-01 12:00:05 INFO 又一行 one more\n")
        expect(lines).to_have_count(6, timeout=WAIT)
        page.screenshot(path=artifacts / "logs.png")
        assert problems.errors == []


def test_truncation_and_rotation_are_followed(page: Any, tmp_path: Path) -> None:
    log = tmp_path / "rotating.log"
    log.write_text("", encoding="utf-8")
    with start_hub(
        ["--store", "memory", "--tail", str(log)], env=FAST_ENV, log_dir=tmp_path
    ) as hub:
        page.goto(f"{hub.url}/logs")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT)
        _append(log, "INFO before truncation\n")
        expect(page.locator(".line:not(.notice)")).to_have_count(1, timeout=WAIT)
        log.write_text("", encoding="utf-8")  # truncate (like logrotate's copytruncate)
        expect(page.locator(".line.notice")).to_contain_text(
            [re.compile("truncated")], timeout=WAIT
        )
        _append(log, "INFO after truncation\n")
        expect(page.locator(".line:not(.notice)")).to_have_count(2, timeout=WAIT)
        # rotate: keep the old file as .1 and put a new file at the path in one step
        fresh = tmp_path / "rotating.log.new"
        fresh.write_text("INFO 轮转后的新文件 first line of the new file\n", encoding="utf-8")
        os.link(log, tmp_path / "rotating.log.1")
        os.replace(fresh, log)
        expect(page.locator(".line.notice")).to_have_count(2, timeout=WAIT)
        expect(page.locator(".line:not(.notice) .x")).to_have_text(
            [
                "INFO before truncation",
                "INFO after truncation",
                "INFO 轮转后的新文件 first line of the new file",
            ],
            timeout=WAIT,
        )
        expect(page.locator(".line.notice").last).to_contain_text("rotated")


def test_the_last_lines_already_in_a_file_are_shown_at_start(page: Any, tmp_path: Path) -> None:
    """Issue 10: ``--tail`` showed nothing already in the file; ``--tail-lines N`` = ``tail -n``."""
    app = tmp_path / "app.log"
    app.write_text("".join(f"INFO 旧的第 {i} 行\n" for i in range(1, 6)), encoding="utf-8")
    args = ["--store", "memory", "--no-ticker", "--tail", str(app), "--tail-lines", "2"]
    with start_hub(args, env=FAST_ENV, log_dir=tmp_path) as hub:
        page.goto(f"{hub.url}/logs")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT)
        lines = page.locator(".line:not(.notice) .x")
        expect(lines).to_have_text(["INFO 旧的第 4 行", "INFO 旧的第 5 行"], timeout=WAIT)
        _append(app, "INFO 新的一行\n")
        expect(lines).to_have_count(3, timeout=WAIT)


def test_without_tail_the_page_says_how_to_start_one(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    """Issue 10: ``/logs`` under plain ``make run`` was an empty black box."""
    with start_hub(["--store", "memory", "--no-ticker"], env=FAST_ENV, log_dir=tmp_path) as hub:
        problems = PageProblems(page, hub.url)
        page.goto(f"{hub.url}/logs")
        how = page.locator("#how-to-tail")
        expect(how).to_be_visible(timeout=WAIT)
        expect(how).to_contain_text("No file is being followed")
        expect(how.locator("pre").first).to_have_text("ssehub serve --tail /var/log/app.log")
        expect(how).to_contain_text("--tail-lines")
        expect(page.locator("#conn")).to_have_attribute("data-state", "idle")
        page.screenshot(path=artifacts / "logs-no-tail.png")
        assert problems.errors == []
