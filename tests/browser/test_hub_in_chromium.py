"""The hub as Chromium's own EventSource sees it: no forged events, exact cursors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import HubProcess, free_port, start_hub

pytestmark = pytest.mark.browser

COLLECT = """
async ([path, bodies]) => {
  const seen = [];
  const source = new EventSource(path);
  for (const type of ['message', 'note', 'x', 'forged', 'evil']) {
    source.addEventListener(type, (e) => seen.push([e.type, e.data, e.lastEventId]));
  }
  await new Promise((resolve, reject) => {
    source.onopen = resolve;
    source.onerror = () => reject(new Error('stream failed'));
  });
  for (const body of bodies) {
    await fetch('/topics/t', {method: 'POST', headers: {'Content-Type': 'application/json'},
                              body: JSON.stringify(body)});
  }
  await fetch('/topics/t', {method: 'POST', body: 'sentinel'});
  await new Promise((resolve) => {
    const check = () => seen.some((e) => e[1] === 'sentinel') ? resolve() : setTimeout(check, 10);
    check();
  });
  source.close();
  return seen;
}
"""


def test_data_with_line_breaks_never_forges_an_event_in_chromium(
    hub: HubProcess, page: Any
) -> None:
    page.goto(f"{hub.url}/healthz")
    bodies = [
        {"data": "a\n\nevent: forged\ndata: evil", "event": "note"},
        {"data": "b\r\rid: 666\rretry: 1\r"},
        {"data": "c\r\n\r\nevent: x\r\ndata: y"},
    ]
    seen = page.evaluate(COLLECT, ["/topics/t", bodies])
    assert [(kind, data) for kind, data, _ in seen] == [
        ("note", "a\n\nevent: forged\ndata: evil"),
        ("message", "b\n\nid: 666\nretry: 1\n"),
        ("message", "c\n\nevent: x\ndata: y"),
        ("message", "sentinel"),
    ]
    ids = [event_id for _, _, event_id in seen]
    assert len(set(ids)) == 4
    assert "666" not in ids


def test_chromium_resumes_from_the_opening_cursor_across_a_hub_restart(
    tmp_path: Path, page: Any
) -> None:
    """The first write, ``id: {cursor}\nretry: 3000``, dispatches nothing yet sets lastEventId.

    The browser saw no event at all before the hub went away, yet it reconnects with
    ``Last-Event-ID`` set to the opening cursor and gets exactly what it missed.
    """
    store = ["--store", f"sqlite:{tmp_path / 'hub.db'}", "--no-ticker"]
    port = free_port()
    reconnects: list[dict[str, str]] = []
    with start_hub(store, port=port, log_dir=tmp_path) as hub:
        cursor = httpx.post(f"{hub.url}/topics/other", content="before").json()["id"]
        page.goto(f"{hub.url}/healthz")
        page.evaluate(
            """() => {
                 window.__opens = 0; window.__seen = [];
                 const s = new EventSource('/topics/t');
                 s.onopen = () => { window.__opens += 1; };
                 s.onmessage = (e) => window.__seen.push([e.data, e.lastEventId]);
               }"""
        )
        page.wait_for_function("window.__opens === 1", timeout=15_000)
        page.on(
            "request",
            lambda request: (
                reconnects.append(request.all_headers()) if "/topics/t" in request.url else None
            ),
        )
    with start_hub(store, port=port, log_dir=tmp_path) as hub:
        missed = httpx.post(f"{hub.url}/topics/t", content="missed while away").json()["id"]
        page.wait_for_function("window.__opens === 2", timeout=30_000)
        page.wait_for_function("window.__seen.length === 1", timeout=15_000)
        seen = page.evaluate("window.__seen")
    # The event published before the reconnect arrives: only a resume from the
    # opening cursor can deliver it (a fresh stream would start after it).
    assert seen == [["missed while away", missed]]
    assert any(headers.get("last-event-id") == cursor for headers in reconnects), reconnects
