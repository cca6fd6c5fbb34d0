"""Access control as Chromium enforces it with the hub (issue 11).

Two real servers on two loopback ports: the hub, and an "app" whose pages are
another origin (same site: cookies ignore ports).  A page of a foreign origin
can no longer publish to a loopback hub, by any of the requests a page can
make without CORS; a page of an origin the hub allows (``--cors-origin``),
whose login route set the token cookie, reads a private topic, and an
anonymous page of the same origin does not.

The cookie: ``HttpOnly`` (the page's script can't read the token),
``SameSite=Strict`` (the app and the hub are one site: 127.0.0.1, whatever
the port) and ``Path=/``.  ``Secure`` works on this http loopback too —
Chromium treats ``http://127.0.0.1`` as a secure context and keeps and sends
``Secure`` cookies there — so the test sets every attribute the README asks
for, as a deployment behind HTTPS would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ssehub.server import mint_token
from tests.support.browser import WAIT
from tests.support.processes import HubProcess, start_hub
from tests.support.servers import serve_in_thread
from tests.support.tokens import SECRET, mint

pytestmark = pytest.mark.browser

PAGE = "<!doctype html><meta charset=utf-8><title>app</title><iframe name=sink></iframe>"


async def _page(request: Request) -> Response:
    return HTMLResponse(PAGE)


async def _login(request: Request) -> Response:
    """The README's login route, in Starlette: the hub's token in an HttpOnly cookie."""
    token = mint_token(SECRET, subscribe=["private/*"], ttl=600)
    response = JSONResponse({"user": "alice"})
    response.set_cookie(
        "ssehub_access_token",
        token,
        max_age=600,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


@pytest.fixture(scope="module")
def app_origin() -> Iterator[str]:
    """The other origin: a page and a login route on a second loopback port."""
    app = Starlette(routes=[Route("/", _page), Route("/login", _login, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield url


def _head(hub: HubProcess) -> int:
    return int(httpx.get(f"{hub.url}/healthz").json()["head"])


ATTACKS = """
async (hub) => {
  const outcomes = {};
  // 1. A no-cors POST: the page can't read the answer, but the request is sent.
  try {
    await fetch(hub + '/topics/t', {method: 'POST', mode: 'no-cors', body: 'no-cors'});
    outcomes.noCors = 'sent';
  } catch (e) { outcomes.noCors = 'failed: ' + e; }
  // 2. fetch() with a JSON body: needs a preflight the hub does not grant.
  try {
    await fetch(hub + '/topics/t', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                    body: JSON.stringify({data: 'json'})});
    outcomes.json = 'sent';
  } catch (e) { outcomes.json = 'blocked'; }
  // 3. A text/plain form posted into a frame.
  const form = document.createElement('form');
  form.method = 'POST'; form.enctype = 'text/plain'; form.target = 'sink';
  form.action = hub + '/topics/t';
  const field = document.createElement('input');
  field.name = '{"data": "form", "x": "'; field.value = '"}';
  form.appendChild(field); document.body.appendChild(form);
  const loaded = new Promise((resolve) => document.querySelector('iframe').onload = resolve);
  form.submit();
  await loaded;
  return outcomes;
}
"""


def test_a_page_of_another_origin_can_no_longer_publish_to_a_loopback_hub(
    app_origin: str, page: Any, tmp_path: Path
) -> None:
    with start_hub(["--store", "memory", "--no-ticker"], log_dir=tmp_path) as hub:
        page.goto(app_origin)
        outcomes = page.evaluate(ATTACKS, hub.url)
        assert outcomes == {"noCors": "sent", "json": "blocked"}
        frame = page.frame(name="sink")
        assert frame is not None
        assert '"form_refused"' in frame.content()  # the form reached the hub, refused
        assert _head(hub) == 0  # nothing stored
        # The hub still takes the seed's one-line curl publish.
        assert httpx.post(f"{hub.url}/topics/t", content="curl").status_code == 201
        assert _head(hub) == 1


SUBSCRIBE = """
async ([url, login]) => {
  if (login) {
    const answer = await fetch('/login', {method: 'POST'});
    if (!answer.ok) throw new Error('login failed: ' + answer.status);
  }
  window.__seen = [];
  const source = new EventSource(url, {withCredentials: true});
  source.onmessage = (e) => window.__seen.push(e.data);
  await new Promise((resolve, reject) => {
    source.onopen = resolve;
    source.onerror = () => reject(new Error('stream failed'));
  });
  return document.cookie;
}
"""


def test_a_cookie_authenticated_page_of_an_allowed_origin_reads_a_private_topic(
    app_origin: str, browser: Any, tmp_path: Path
) -> None:
    args = ["--store", "memory", "--no-ticker", "--jwt-key", SECRET, "--cors-origin", app_origin]
    with start_hub(args, log_dir=tmp_path) as hub:
        stream = f"{hub.url}/events?topic=private/alice&topic=news"
        pages = {}
        contexts = []
        for who, login in (("alice", True), ("anonymous", False)):
            context = browser.new_context()
            contexts.append(context)
            pages[who] = context.new_page()
            pages[who].goto(app_origin)
            visible = pages[who].evaluate(SUBSCRIBE, [stream, login])
            assert "ssehub_access_token" not in visible  # HttpOnly: scripts never see it
        try:
            token = mint(publish=["*"])
            auth = {"Authorization": f"Bearer {token}"}
            secret = httpx.post(
                f"{hub.url}/topics/private/alice",
                json={"data": "for alice", "private": True},
                headers=auth,
            )
            assert secret.status_code == 201
            public = httpx.post(f"{hub.url}/topics/news", json={"data": "news"}, headers=auth)
            assert public.status_code == 201
            for who, expected in (("alice", ["for alice", "news"]), ("anonymous", ["news"])):
                pages[who].wait_for_function("() => window.__seen.includes('news')", timeout=WAIT)
                assert pages[who].evaluate("window.__seen") == expected, who
        finally:
            for context in contexts:
                context.close()
