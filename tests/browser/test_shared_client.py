"""``/ssehub.js`` in Chromium: tabs share one stream, a leader hands over, headers, hidden tabs.

Every page is a tab of one browser context (one origin): it opens ``/healthz`` of a
real hub, imports the client with ``import('/ssehub.js')`` and keeps what it receives
in ``window.seen`` as ``"{lastEventId} {data}"`` (and each event's ``topic`` in
``window.topics``).  Streams are counted on the hub (``open_streams`` of ``/healthz``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import WAIT
from tests.support.polling import poll_until
from tests.support.processes import HubProcess, free_port, start_hub
from tests.support.tokens import SECRET, mint

pytestmark = pytest.mark.browser

TABS = 10
EVENTS = 60

#: Opens a source in this page: subscribe(topics, options) of the hub's client.
OPEN = """
async ([topics, options]) => {
  const client = await import('/ssehub.js');
  window.seen = [];
  window.topics = [];
  window.errors = [];
  window.source = client.subscribe(topics, options);
  window.source.onmessage = (e) => {
    window.seen.push(`${e.lastEventId} ${e.data}`);
    window.topics.push(e.topic);
  };
  window.source.onerror = (e) => window.errors.push(e.status);
}
"""


def _open_streams(hub: HubProcess) -> int:
    count: int = httpx.get(f"{hub.url}/healthz", timeout=10).json()["open_streams"]
    return count


def _streams_opened(hub: HubProcess) -> int:
    metrics = httpx.get(f"{hub.url}/metrics", timeout=10).text
    match = re.search(r"^ssehub_streams_opened_total ([0-9.e+]+)$", metrics, re.M)
    assert match is not None, metrics
    return int(float(match.group(1)))


def _tab(
    context: Any, hub: HubProcess, topics: list[str], options: dict[str, Any] | None = None
) -> Any:
    page = context.new_page()
    page.goto(f"{hub.url}/healthz")
    page.evaluate(OPEN, [topics, options or {}])
    return page


def _publish(hub: HubProcess, topic: str, data: str, **kwargs: Any) -> str:
    response = httpx.post(f"{hub.url}/topics/{topic}", content=data, timeout=10, **kwargs)
    assert response.status_code == 201, response.text
    event_id: str = response.json()["id"]
    return event_id


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    with start_hub(["--store", "memory", "--no-demos"], log_dir=tmp_path) as process:
        yield process


def test_the_client_module_is_served_with_a_type_and_an_etag(hub: HubProcess) -> None:
    first = httpx.get(f"{hub.url}/ssehub.js", timeout=10)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/javascript; charset=utf-8"
    assert "export function subscribe" in first.text
    again = httpx.get(f"{hub.url}/ssehub.js", headers={"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")


def test_ten_tabs_share_one_stream_and_a_closed_leader_loses_no_event_and_repeats_none(
    context: Any, hub: HubProcess
) -> None:
    topics = [["t/a", "t/b"] if i % 2 else ["t/a"] for i in range(TABS)]
    tabs = [_tab(context, hub, names) for names in topics]
    for tab in tabs:
        tab.wait_for_function("window.source.readyState === 1", timeout=WAIT)
    poll_until(lambda: _open_streams(hub) == 1, "one stream for ten tabs", WAIT / 1000)
    leaders = [tab for tab in tabs if tab.evaluate("window.source.leader")]
    assert len(leaders) == 1

    published: list[tuple[str, str]] = []
    halfway = threading.Event()

    def publish_all() -> None:
        for n in range(EVENTS):
            topic = "t/a" if n % 3 else "t/b"
            published.append((topic, f"{_publish(hub, topic, str(n))} {n}"))
            if n == EVENTS // 3:
                halfway.set()

    publisher = threading.Thread(target=publish_all)
    publisher.start()
    assert halfway.wait(30)
    leaders[0].close()  # mid-stream: a third of the events are out
    publisher.join(60)
    survivors = [(tab, names) for tab, names in zip(tabs, topics, strict=True)]
    survivors = [(tab, names) for tab, names in survivors if tab is not leaders[0]]
    for tab, names in survivors:
        # every event of its own topics exactly once, in order: id by id
        expected = [seen for topic, seen in published if topic in names]
        tab.wait_for_function(f"window.seen.length >= {len(expected)}", timeout=WAIT)
        assert tab.evaluate("window.seen") == expected
    survivors_tabs = [tab for tab, _ in survivors]
    assert sum(tab.evaluate("window.source.leader") for tab in survivors_tabs) == 1
    poll_until(lambda: _open_streams(hub) == 1, "one stream after the handover", WAIT / 1000)


def test_when_the_union_of_topics_shrinks_the_leader_reopens_with_no_gap(
    context: Any, hub: HubProcess
) -> None:
    stays = _tab(context, hub, ["t/a"])
    stays.wait_for_function("window.source.readyState === 1", timeout=WAIT)
    leaves = _tab(context, hub, ["t/a", "t/b"])
    leaves.wait_for_function("window.source.readyState === 1", timeout=WAIT)
    poll_until(lambda: _streams_opened(hub) == 2, "the reopen for {t/a, t/b}", WAIT / 1000)
    published: list[str] = []
    for n in range(30):
        published.append(f"{_publish(hub, 't/a', str(n))} {n}")
        if n == 10:
            leaves.close()  # the union goes from {t/a, t/b} to {t/a}: a reopen
    stays.wait_for_function(f"window.seen.length >= {len(published)}", timeout=WAIT)
    assert stays.evaluate("window.seen") == published
    assert stays.evaluate("window.source.leader")
    poll_until(lambda: _open_streams(hub) == 1, "one stream", WAIT / 1000)
    # opened for {t/a}, reopened for {t/a, t/b}, reopened for {t/a}
    assert _streams_opened(hub) == 3


def test_without_broadcast_channel_each_tab_opens_its_own_stream(
    context: Any, hub: HubProcess
) -> None:
    context.add_init_script("delete window.BroadcastChannel;")
    tabs = [_tab(context, hub, ["t/a"]) for _ in range(2)]
    for tab in tabs:
        tab.wait_for_function("window.source.readyState === 1", timeout=WAIT)
    poll_until(lambda: _open_streams(hub) == 2, "a stream per tab", WAIT / 1000)
    event_id = _publish(hub, "t/a", "x")
    for tab in tabs:
        tab.wait_for_function("window.seen.length === 1", timeout=WAIT)
        assert tab.evaluate("window.seen") == [f"{event_id} x"]


def test_an_authorization_header_opens_a_private_topic(context: Any, tmp_path: Path) -> None:
    args = ["--store", "memory", "--no-demos", "--jwt-key", SECRET]
    with start_hub(args, log_dir=tmp_path) as hub:
        reader = mint(subscribe=["secret/t"])
        publisher = {"Authorization": f"Bearer {mint(publish=['*'])}"}
        bearer = _tab(
            context, hub, ["secret/t"], {"headers": {"Authorization": f"Bearer {reader}"}}
        )
        anonymous = _tab(context, hub, ["secret/t"])
        for tab in (bearer, anonymous):
            tab.wait_for_function("window.source.readyState === 1", timeout=WAIT)
        # two header sets: two groups, two streams
        poll_until(lambda: _open_streams(hub) == 2, "a stream per header set", WAIT / 1000)
        private = _publish(
            hub, "secret/t", "for the token", headers=publisher, params={"private": "1"}
        )
        public = _publish(hub, "secret/t", "for all", headers=publisher)
        for tab in (bearer, anonymous):
            tab.wait_for_function("window.seen.some((s) => s.endsWith('for all'))", timeout=WAIT)
        assert bearer.evaluate("window.seen") == [
            f"{private} for the token",
            f"{public} for all",
        ]
        assert anonymous.evaluate("window.seen") == [f"{public} for all"]


HIDE = """() => {
  Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
  Object.defineProperty(document, 'hidden', {value: true, configurable: true});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_a_hidden_tab_keeps_its_stream_unless_told_otherwise(context: Any, hub: HubProcess) -> None:
    kept = _tab(context, hub, ["t/a"])  # shared, the default
    dropped = _tab(context, hub, ["t/a"], {"share": False, "openWhenHidden": False})
    for tab in (kept, dropped):
        tab.wait_for_function("window.source.readyState === 1", timeout=WAIT)
    poll_until(lambda: _open_streams(hub) == 2, "two streams", WAIT / 1000)
    for tab in (kept, dropped):
        tab.evaluate(HIDE)
    # the tab asked to close while hidden does; the default one stays open
    poll_until(lambda: _open_streams(hub) == 1, "the opted-out hidden tab to close", WAIT / 1000)
    event_id = _publish(hub, "t/a", "while hidden")
    kept.wait_for_function("window.seen.length === 1", timeout=WAIT)
    assert kept.evaluate("[document.visibilityState, window.seen]") == [
        "hidden",
        [f"{event_id} while hidden"],
    ]
    assert kept.evaluate("window.source.readyState") == 1


def test_a_tab_that_asks_for_history_gets_it_over_the_stream_another_tab_leads(
    context: Any, hub: HubProcess
) -> None:
    """The logs page asks for the events after a cursor: the leader reopens from there."""
    first = _tab(context, hub, ["t/b"])
    first.wait_for_function("window.source.readyState === 1", timeout=WAIT)
    before = _publish(hub, "t/z", "unrelated")
    old = _publish(hub, "t/a", "history")
    late = _tab(context, hub, ["t/a"], {"lastEventId": before})
    late.wait_for_function("window.seen.length === 1", timeout=WAIT)
    new = _publish(hub, "t/a", "live")
    own = _publish(hub, "t/b", "its own")
    late.wait_for_function("window.seen.length === 2", timeout=WAIT)
    first.wait_for_function("window.seen.length === 1", timeout=WAIT)
    assert late.evaluate("window.seen") == [f"{old} history", f"{new} live"]
    # a shared source gets only its own topics' events: not the union's, nor the replay
    # another tab asked for
    assert first.evaluate("window.seen") == [f"{own} its own"]
    assert _open_streams(hub) == 1


def test_two_tabs_on_one_stream_each_get_only_their_own_topics_events_once(
    context: Any, hub: HubProcess
) -> None:
    """The shared stream is tagged (``?tag=topic``): a tab of ``a`` never sees ``b``'s events."""
    tab_a, tab_b = _tab(context, hub, ["a"]), _tab(context, hub, ["b"])
    for tab in (tab_a, tab_b):
        tab.wait_for_function("window.source.readyState === 1", timeout=WAIT)
    # the leader's stream covers both topics before anything is published
    poll_until(lambda: _streams_opened(hub) == 2, "the reopen for {a, b}", WAIT / 1000)
    published: dict[str, list[str]] = {"a": [], "b": []}
    for n in range(6):
        topic = "ab"[n % 2]
        published[topic].append(f"{_publish(hub, topic, f'{topic}{n}')} {topic}{n}")
    for tab in (tab_a, tab_b):
        tab.wait_for_function("window.seen.length >= 3", timeout=WAIT)
    last = _publish(hub, "a", "last")  # after it, nothing of b's can still be in flight
    tab_a.wait_for_function("window.seen.length >= 4", timeout=WAIT)
    published["a"].append(f"{last} last")
    for tab, topic in ((tab_a, "a"), (tab_b, "b")):
        assert tab.evaluate("window.seen") == published[topic]
        assert set(tab.evaluate("window.topics")) == {topic}
    assert _open_streams(hub) == 1
    assert sum(tab.evaluate("window.source.leader") for tab in (tab_a, tab_b)) == 1


RESUME = """
async ([url, lastEventId]) => {
  const { HubEventSource } = await import('/ssehub.js');
  window.seen = []; window.opens = 0;
  const source = new HubEventSource(url, { lastEventId });
  source.onopen = () => { window.opens += 1; };
  source.onmessage = (e) => window.seen.push(`${e.lastEventId} ${e.data}`);
  source.addEventListener('ssehub-reset', (e) => {
    window.seen.push(`reset ${JSON.parse(e.data).reason}`);
  });
  window.source = source;
}
"""


def test_a_cursor_the_hub_cannot_resume_gives_the_reset_event(page: Any, hub: HubProcess) -> None:
    page.goto(f"{hub.url}/healthz")
    page.evaluate(RESUME, ["/topics/t/a", "zzz-999"])
    page.wait_for_function("window.seen.length === 1", timeout=WAIT)
    event_id = _publish(hub, "t/a", "after the reset")
    page.wait_for_function("window.seen.length === 2", timeout=WAIT)
    seen = page.evaluate("window.seen")
    assert seen[0].startswith("reset ")
    assert seen[1] == f"{event_id} after the reset"


def test_a_source_resumes_with_last_event_id_across_a_hub_restart(
    page: Any, tmp_path: Path
) -> None:
    """It waits the hub's ``retry:`` and sends the opening cursor: the missed event arrives."""
    args = ["--store", f"sqlite:{tmp_path / 'hub.db'}", "--no-demos"]
    port = free_port()
    reconnects: list[str | None] = []
    with start_hub(args, port=port, log_dir=tmp_path) as hub:
        cursor = _publish(hub, "t/other", "before")
        page.goto(f"{hub.url}/healthz")
        page.evaluate(RESUME, ["/topics/t/a", ""])
        page.wait_for_function("window.opens === 1", timeout=WAIT)
        page.on(
            "request",
            lambda r: (
                reconnects.append(r.headers.get("last-event-id")) if "/t/a" in r.url else None
            ),
        )
    with start_hub(args, port=port, log_dir=tmp_path) as hub:
        missed = _publish(hub, "t/a", "missed while away")
        page.wait_for_function("window.seen.length === 1", timeout=60_000)
        assert page.evaluate("window.seen") == [f"{missed} missed while away"]
    assert reconnects
    assert set(reconnects) == {cursor}


def test_the_readme_browser_snippet_runs_as_written(page: Any, hub: HubProcess) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```js\n(.*?)^```", readme, re.S | re.M)
    (snippet,) = [block for block in blocks if "/ssehub.js" in block]
    page.goto(f"{hub.url}/healthz")
    with page.expect_console_message(lambda m: m.text == "open", timeout=WAIT):
        page.add_script_tag(content=snippet, type="module")
    with page.expect_console_message(lambda m: m.text.startswith("message"), timeout=WAIT) as seen:
        event_id = _publish(hub, "chat/42", "你好")
    assert seen.value.text == f"message 你好 {event_id}"
