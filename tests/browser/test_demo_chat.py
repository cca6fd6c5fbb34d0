"""The chat page in Chromium: token-by-token answers, resume after reload, stop, an LLM upstream."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from ssehub.demos._responders import THINKING_STEPS, simulated_answer
from tests.support.browser import FAST_ENV, WAIT, PageProblems
from tests.support.fake_llm import FAKE_ANSWER, FAKE_TOKENS, MARKDOWN_ANSWER, FakeLLM
from tests.support.processes import HubProcess, start_hub

pytestmark = pytest.mark.browser


def _hub(tmp_path: Path, token_delay: str, think_delay: str = "0.05", *extra: str) -> Any:
    env = {
        **FAST_ENV,
        "SSEHUB_CHAT_TOKEN_DELAY": token_delay,
        "SSEHUB_CHAT_THINK_DELAY": think_delay,
    }
    return start_hub(["--store", "memory", "--no-ticker", *extra], env=env, log_dir=tmp_path)


def _ask(page: Any, message: str) -> None:
    page.locator("#message").fill(message)
    page.locator("#message").press("Enter")


def _wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_an_answer_streams_token_by_token_with_thinking_and_history(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    with _hub(tmp_path, token_delay="0.03", think_delay="0.4") as hub:
        problems = PageProblems(page, hub.url)
        page.goto(f"{hub.url}/chat")
        expect(page.locator("#responder")).to_have_text("simulated", timeout=WAIT)
        question = "你好，什么是 SSE？"
        _ask(page, question)
        turn = page.locator(".turn").last
        expect(turn.locator(".thinking")).to_be_visible(timeout=WAIT)
        expect(page.locator("#stop")).to_be_visible()
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT)
        answer = turn.locator(".answer-text")
        expect(answer).not_to_be_empty(timeout=WAIT)
        partial = answer.inner_text()
        expected = simulated_answer(question)
        assert expected.startswith(partial)
        assert len(partial) < len(expected)  # it grows: here only part of it has come
        expect(turn).to_have_attribute("data-status", "done", timeout=WAIT)
        assert answer.inner_text() == expected
        expect(turn.locator(".thinking")).to_be_hidden()
        expect(turn.locator("details.steps li")).to_have_text(list(THINKING_STEPS))
        expect(page.locator("#send")).to_be_visible()
        expect(page.locator("#conn")).to_have_attribute("data-state", "idle")

        second = "Second question, 第二个问题"
        _ask(page, second)
        expect(page.locator(".turn")).to_have_count(2)
        expect(page.locator(".turn").last).to_have_attribute("data-status", "done", timeout=WAIT)
        assert page.locator(".turn .answer-text").all_inner_texts() == [
            expected,
            simulated_answer(second),
        ]
        assert page.locator(".turn .question").all_text_contents() == [question, second]
        page.screenshot(path=artifacts / "chat.png")
        assert problems.errors == []


def test_reloading_mid_answer_continues_with_no_repeated_or_missing_tokens(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    with _hub(tmp_path, token_delay="0.1") as hub:
        page.goto(f"{hub.url}/chat")
        question = "刷新页面会丢失回答吗？"
        expected = simulated_answer(question)
        _ask(page, question)
        answer = page.locator(".turn .answer-text")
        for seen in (10, 30):
            expect(answer).to_have_text(_at_least(seen), timeout=WAIT)
            expect(page.locator(".turn")).to_have_attribute("data-status", "streaming")
            page.reload()
            before = page.locator(".turn .answer-text").inner_text()
            assert expected.startswith(before)
            assert len(before) < len(expected), "the reload did not happen mid-answer"
        expect(page.locator(".turn")).to_have_attribute("data-status", "done", timeout=60_000)
        assert page.locator(".turn .answer-text").inner_text() == expected
        assert page.locator(".turn .question").text_content() == question
        page.screenshot(path=artifacts / "chat-resumed.png")


def _at_least(n: int) -> re.Pattern[str]:
    """Matches a text of at least ``n`` characters."""
    return re.compile(rf"^[\s\S]{{{n},}}$")


def test_stop_cancels_the_answer_on_the_hub(page: Any, tmp_path: Path) -> None:
    # slow enough that the stop always lands before the answer's end, even on a busy box
    with _hub(tmp_path, token_delay="0.3") as hub:
        page.goto(f"{hub.url}/chat")
        _ask(page, "请停下")
        turn = page.locator(".turn")
        expect(turn.locator(".answer-text")).to_have_text(_at_least(5), timeout=WAIT)
        page.locator("#stop").click()
        expect(turn).to_have_attribute("data-status", "stopped")
        expect(page.locator("#send")).to_be_visible()
        answer_id = turn.get_attribute("data-answer-id")
        text = turn.locator(".answer-text").inner_text()
        assert simulated_answer("请停下").startswith(text)

        def stopped_on_hub() -> bool:
            # the page's own session (its cookie) owns the answer: ask with it
            status = page.request.get(f"{hub.url}/chat/answers/{answer_id}").json()
            return bool(status["state"] == "stopped")

        _wait_until(stopped_on_hub)


def test_answers_from_an_openai_compatible_upstream_and_its_failure(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    with FakeLLM() as llm:
        env = {**FAST_ENV, "OPENAI_API_KEY": "sk-browser-test"}
        args = ["--store", "memory", "--no-ticker", "--llm-url", llm.url, "--llm-model", "fake-1"]
        with start_hub(args, env=env, log_dir=tmp_path) as hub:
            _llm_conversation(page, hub, llm, artifacts)


def _llm_conversation(page: Any, hub: HubProcess, llm: FakeLLM, artifacts: Path) -> None:
    problems = PageProblems(page, hub.url)
    page.goto(f"{hub.url}/chat")
    expect(page.locator("#responder")).to_have_text("fake-1", timeout=WAIT)
    _ask(page, "你好")
    first = page.locator(".turn").first
    expect(first).to_have_attribute("data-status", "done", timeout=WAIT)
    assert first.locator(".answer-text").inner_text() == FAKE_ANSWER
    headers, payload = llm.requests[-1]
    assert headers["authorization"] == "Bearer sk-browser-test"
    assert payload["messages"][-1] == {"role": "user", "content": "你好"}

    _ask(page, "[fail] 再说一遍")
    second = page.locator(".turn").nth(1)
    expect(second).to_have_attribute("data-status", "error", timeout=WAIT)
    expect(second.locator(".error-box")).to_be_visible()
    expect(second.locator(".error-box")).to_contain_text("upstream connection broke mid-answer")
    assert second.locator(".answer-text").inner_text() == "".join(FAKE_TOKENS[:3])
    expect(page.locator("#send")).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "idle")
    # the conversation so far went upstream with the second question
    assert llm.requests[-1][1]["messages"][:2] == [
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": FAKE_ANSWER},
    ]
    page.screenshot(path=artifacts / "chat-llm-error.png")
    assert problems.errors == []


def test_a_hostile_markdown_answer_shows_as_text_and_runs_nothing(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    """Issue 14: answers render Markdown, and no HTML from the model reaches the DOM."""
    with FakeLLM() as llm:
        args = ["--store", "memory", "--no-ticker", "--llm-url", llm.url, "--llm-model", "fake-1"]
        with start_hub(args, env=FAST_ENV, log_dir=tmp_path) as hub:
            problems = PageProblems(page, hub.url)
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{hub.url}/chat")
            _ask(page, "[markdown] 给我看看")
            turn = page.locator(".turn").last
            expect(turn).to_have_attribute("data-status", "done", timeout=WAIT)
            answer = turn.locator(".answer-text")
            # Markdown became elements …
            expect(answer.locator("h4")).to_have_text("结果 Result")
            expect(answer.locator("strong")).to_have_text("bold")
            expect(answer.locator("em")).to_have_text("italic")
            expect(answer.locator(":not(pre) > code")).to_have_text("inline <b>code</b>")
            expect(answer.locator("pre code")).to_have_text('print("<script>alert(1)</script>")')
            expect(answer.locator("pre code")).to_have_attribute("data-lang", "python")
            link = answer.locator("a")
            expect(link).to_have_count(1)
            expect(link).to_have_attribute("href", "https://example.com/docs")
            expect(link).to_have_attribute("rel", "noopener noreferrer")
            # … and the model's HTML stayed text: shown, never parsed, never run
            text = answer.inner_text()
            assert '<img src=x onerror="window.__xss = 1">' in text
            assert "<script>window.__xss = 2</script>" in text
            assert "[bad link](javascript:window.__xss=3)" in text
            for tag in ("img", "script", "b", "iframe"):
                expect(answer.locator(tag)).to_have_count(0)
            answer.locator("li").nth(1).click()
            assert page.evaluate("window.__xss") is None
            assert dialogs == []
            page.screenshot(path=artifacts / "chat-markdown.png")
            assert problems.errors == []
            assert MARKDOWN_ANSWER.startswith("## 结果")
