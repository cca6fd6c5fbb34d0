"""The seed's demo stream on ``GET /`` in Chromium's own ``EventSource``.

Issue 10: the demo stream ended and every client replayed it forever.  Its
last event now has an id, and the reconnect that carries it gets ``204``, on
which the browser's ``EventSource`` closes for good (WHATWG).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ssehub.demos._root import SEED_END_ID, SEED_EVENTS
from tests.support.browser import WAIT
from tests.support.processes import start_hub

pytestmark = pytest.mark.browser

_LISTEN = """() => {
  window.seen = { events: [], opens: 0, ids: [] };
  const source = new EventSource("./");
  window.source = source;
  source.onopen = () => { window.seen.opens += 1; };
  for (const name of %s) {
    source.addEventListener(name, (e) => {
      window.seen.events.push(e.type);
      window.seen.ids.push(e.lastEventId);
    });
  }
}"""


def test_event_source_reads_the_demo_once_then_stops_on_204(page: Any, tmp_path: Path) -> None:
    args = ["--store", "memory", "--no-ticker", "--demo-interval", "0.01"]
    with start_hub(args, log_dir=tmp_path) as hub:
        statuses: list[int] = []
        page.on("response", lambda r: statuses.append(r.status) if r.url == hub.url + "/" else None)
        page.goto(f"{hub.url}/test.html")
        names = sorted({name for name, _ in SEED_EVENTS})
        page.evaluate(_LISTEN % names)
        # the browser reconnects after the end (its default retry), gets 204 and closes
        page.wait_for_function("() => window.source.readyState === 2", timeout=WAIT)
        seen = page.evaluate("() => window.seen")
    assert seen["events"] == [name for name, _ in SEED_EVENTS]
    assert seen["opens"] == 1
    assert seen["ids"][-1] == SEED_END_ID
    assert 204 in statuses
