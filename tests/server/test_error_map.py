"""One table from ssehub's errors to HTTP, used by every route.

Issue 10: the mapping was written five times with different answers (a bad
topic was 400 from the topic API, a hub refusal 503 ``store_unavailable`` from
the chat demo, the publish 503 carried its own message).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ssehub import errors
from ssehub.demos import DemosPlugin
from ssehub.errors import (
    BackendUnavailableError,
    HubClosingError,
    HubError,
    InvalidEventError,
    InvalidTopicError,
)
from ssehub.hub import RESET_EVENT, Hub
from ssehub.hub.backends.memory import MemoryBackend
from ssehub.server import ApiError, HubApp, Settings
from ssehub.server._errors import ERROR_ANSWERS, answer_for


class _FlakyStore(MemoryBackend):
    """A memory store that can be switched off: every call then fails."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailableError("the test switched the store off")

    async def append(self, topic: str, data: str, event: str | None = None, **options: Any) -> Any:
        self._check()
        return await super().append(topic, data, event, **options)

    async def head(self) -> int:
        self._check()
        return await super().head()


def test_every_hub_error_class_has_its_own_row() -> None:
    hub_errors = {
        cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, HubError)
    }
    assert hub_errors == set(ERROR_ANSWERS)


@pytest.mark.parametrize(
    ("exc", "status", "code", "retry_after"),
    [
        (InvalidTopicError("bad"), 400, "invalid_topic", None),
        (InvalidEventError("bad"), 422, "invalid_event", None),
        (HubClosingError("bye"), 503, "shutting_down", "2"),
        (BackendUnavailableError("down"), 503, "store_unavailable", "1"),
        (HubError("no topic"), 400, "bad_request", None),
    ],
)
def test_the_table_answers_each_hub_error(
    exc: HubError, status: int, code: str, retry_after: str | None
) -> None:
    api = ApiError.of(exc)
    assert (api.status, api.code) == (status, code)
    assert (api.headers or {}).get("Retry-After") == retry_after
    assert api.message.endswith(str(exc))


def test_a_subclass_is_answered_by_its_nearest_row() -> None:
    class _TooLongTopic(InvalidTopicError):
        pass

    assert answer_for(_TooLongTopic("x")) is ERROR_ANSWERS[InvalidTopicError]


@pytest.fixture
async def app() -> AsyncIterator[tuple[HubApp, _FlakyStore, httpx.AsyncClient]]:
    store = _FlakyStore()
    hub_app = HubApp(Settings(store="memory"), hub=Hub(store), plugins=[DemosPlugin()])
    await hub_app.hub.start(background=False)
    transport = httpx.ASGITransport(app=hub_app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            yield hub_app, store, client
    finally:
        await hub_app.hub.aclose()


def _error(response: httpx.Response) -> tuple[int, str, str | None]:
    return response.status_code, response.json()["error"], response.headers.get("retry-after")


async def test_a_bad_topic_is_the_same_400_on_publish_and_on_both_stream_routes(
    app: tuple[HubApp, _FlakyStore, httpx.AsyncClient],
) -> None:
    _, _, client = app
    answers = [
        await client.post("/topics/a//b", content="x"),
        await client.get("/topics/a//b"),
        await client.get("/events", params={"topic": ["ok", "a//b"]}),
    ]
    assert {_error(r) for r in answers} == {(400, "invalid_topic", None)}
    assert len({r.json()["message"] for r in answers}) == 1


async def test_a_reserved_event_type_is_a_422(
    app: tuple[HubApp, _FlakyStore, httpx.AsyncClient],
) -> None:
    _, _, client = app
    response = await client.post("/topics/t", params={"event": RESET_EVENT}, content="x")
    assert _error(response) == (422, "invalid_event", None)


async def test_a_store_outage_is_the_same_503_on_the_topic_api_and_the_chat_demo(
    app: tuple[HubApp, _FlakyStore, httpx.AsyncClient],
) -> None:
    _, store, client = app
    store.down = True
    answers = [
        await client.post("/topics/news", content="x"),
        await client.get("/topics/news"),
        await client.post("/chat/answers", json={"message": "你好"}),
    ]
    assert {_error(r) for r in answers} == {(503, "store_unavailable", "1")}
    assert {r.json()["message"] for r in answers} == {
        "nothing done, the store is unavailable: the test switched the store off"
    }


async def test_a_draining_hub_refuses_streams_with_the_same_503(
    app: tuple[HubApp, _FlakyStore, httpx.AsyncClient],
) -> None:
    hub_app, _, client = app
    hub_app.hub.drain()
    answers = [await client.get("/topics/news"), await client.get("/events?topic=a")]
    assert {_error(r) for r in answers} == {(503, "shutting_down", "2")}
