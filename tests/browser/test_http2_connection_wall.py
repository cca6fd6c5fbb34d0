"""Chromium's own EventSource over HTTPS + HTTP/2, against the 6-connection wall of HTTP/1.1.

Over HTTP/1.1 a browser opens at most 6 connections per origin, and each EventSource
holds one: the 7th stream of an origin waits until another closes.  Over HTTP/2 every
stream of the origin shares one connection.  The layout is the issue's: one page with
20 streams and 10 more tabs with 2 each, all in one browser profile.  Issue 15.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import WAIT
from tests.support.polling import poll_until
from tests.support.processes import HubProcess, start_hub

pytestmark = pytest.mark.browser

OPEN = """
([topic, count]) => {
  window.opened = 0;
  window.received = 0;
  window.sources = [];
  for (let i = 0; i < count; i++) {
    const source = new EventSource('/topics/' + topic);
    source.onopen = () => { window.opened++; };
    source.onmessage = () => { window.received++; };
    window.sources.push(source);
  }
}
"""

PROTOCOL = "performance.getEntriesByType('navigation')[0].nextHopProtocol"


def _open_streams(hub: HubProcess) -> int:
    answer = httpx.get(f"{hub.url}/healthz", verify=False, timeout=5)
    return int(answer.json()["open_streams"])


def _publish(hub: HubProcess, data: str) -> None:
    answer = httpx.post(f"{hub.url}/topics/wall", content=data, verify=False)
    assert answer.status_code == 201


@contextmanager
def _tabs(browser: Any) -> Iterator[list[Any]]:
    """Eleven tabs of one browser profile (they share its connections)."""
    context = browser.new_context(ignore_https_errors=True)
    try:
        yield [context.new_page() for _ in range(11)]
    finally:
        context.close()


def _open_layout(hub: HubProcess, pages: list[Any]) -> None:
    """The first page opens 20 streams, each other tab 2; all on topic ``wall``."""
    for index, page in enumerate(pages):
        page.goto(f"{hub.url}/healthz")
        page.evaluate(OPEN, ["wall", 20 if index == 0 else 2])


def _count(pages: list[Any], name: str) -> int:
    return sum(int(page.evaluate(f"window.{name}")) for page in pages)


@pytest.fixture
def https_hub(tls_files: tuple[str, str], tmp_path: Path) -> Iterator[HubProcess]:
    cert, key = tls_files
    args = ["--store", "memory", "--no-demos", "--certfile", cert, "--keyfile", key]
    with start_hub(args, log_dir=tmp_path) as hub:
        yield hub


@pytest.fixture
def http_hub(tmp_path: Path) -> Iterator[HubProcess]:
    with start_hub(["--store", "memory", "--no-demos"], log_dir=tmp_path) as hub:
        yield hub


def test_over_http2_one_page_holds_20_streams_and_ten_tabs_2_more_all_receiving(
    browser: Any, https_hub: HubProcess
) -> None:
    with _tabs(browser) as pages:
        _open_layout(https_hub, pages)
        assert pages[0].evaluate(PROTOCOL) == "h2"
        poll_until(lambda: _count(pages, "opened") == 40, "all 40 streams open", WAIT / 1000)
        poll_until(lambda: _open_streams(https_hub) == 40, "40 subscribers on the hub")
        _publish(https_hub, "one")
        _publish(https_hub, "two")
        poll_until(
            lambda: _count(pages, "received") == 80, "both events on every stream", WAIT / 1000
        )


def test_over_http11_the_7th_stream_of_an_origin_never_opens(
    browser: Any, http_hub: HubProcess
) -> None:
    """The same layout over plain HTTP/1.1 stalls: this is what the HTTP/2 test fixes."""
    with _tabs(browser) as pages:
        _open_layout(http_hub, pages[:1])
        poll_until(lambda: _open_streams(http_hub) == 6, "six streams (one per connection)")
        _publish(http_hub, "one")
        poll_until(lambda: _count(pages[:1], "received") == 6, "the event on the six open streams")
        assert _count(pages[:1], "opened") == 6
        assert _open_streams(http_hub) == 6
