"""``Publisher`` / ``AsyncPublisher`` against a real ``ssehub serve``, through a real TCP proxy.

The proxy forwards the request and then throws the answer away (the hub has
stored the event; the publisher never hears it): the retry carries the same
idempotency key, so exactly one event is stored.  Issue 16.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssehub.client import AsyncPublisher, Publisher
from ssehub.errors import BadStatusError, ConnectError
from ssehub.server import mint_token
from tests.support.processes import HubProcess, start_hub
from tests.support.sse import open_stream
from tests.support.tcp_proxy import TcpProxy, run_proxy
from tests.support.tokens import SECRET


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One ``ssehub serve`` (memory store) for the module: every test has its own topic."""
    args = ["--store", "memory", "--no-ticker"]
    with start_hub(args, log_dir=tmp_path_factory.mktemp("hub")) as hub:
        yield hub


@pytest.fixture
def proxy(hub: HubProcess) -> Iterator[TcpProxy]:
    with run_proxy(hub.port) as proxy:
        yield proxy


def _no_sleep(seconds: float) -> None:
    assert 0 <= seconds <= 5


async def _no_asleep(seconds: float) -> None:
    assert 0 <= seconds <= 5


def stored(hub: HubProcess, topic: str, first_id: str) -> list[str]:
    """Every event stored on ``topic``: its history replayed from the store's start."""
    epoch = first_id.rsplit("-", 1)[0]
    Publisher(hub.url).publish(topic, "end-of-history")
    with open_stream(f"{hub.url}/topics/{topic}?last_event_id={epoch}-0") as stream:
        stream.read_until(b"end-of-history")
    return [event.data for event in stream.events if event.data != "end-of-history"]


def test_a_lost_answer_is_retried_and_the_event_is_stored_once(
    hub: HubProcess, proxy: TcpProxy
) -> None:
    proxy.drop_responses(2)
    with Publisher(proxy.url, sleep=_no_sleep, rng=random.Random(1)) as publisher:
        event_id = publisher.publish("orders/42", {"status": "paid"}, event="order")
    assert proxy.dropped == 2
    assert proxy.accepted == 3
    assert stored(hub, "orders/42", event_id) == ['{"status": "paid"}']


async def test_the_async_publisher_retries_without_duplicates(
    hub: HubProcess, proxy: TcpProxy
) -> None:
    proxy.drop_responses(1)
    async with AsyncPublisher(proxy.url, sleep=_no_asleep) as publisher:
        event_id = await publisher.publish("orders/43", "shipped")
    assert proxy.dropped == 1
    assert stored(hub, "orders/43", event_id) == ["shipped"]


def test_the_same_idempotency_key_twice_stores_one_event(hub: HubProcess) -> None:
    with Publisher(hub.url) as publisher:
        first = publisher.publish("news", "hello", idempotency_key="k-1")
        again = publisher.publish("news", "hello", idempotency_key="k-1")
    assert first == again
    assert stored(hub, "news", first) == ["hello"]


def test_publish_many_sends_a_batch_in_order(hub: HubProcess) -> None:
    with Publisher(hub.url) as publisher:
        ids = publisher.publish_many(["a", {"data": "b", "event": "note"}, "c"], topic="batch")
    assert len(set(ids)) == 3
    assert stored(hub, "batch", ids[0]) == ["a", "b", "c"]


def test_a_refusal_raises_at_once_with_the_hubs_message(hub: HubProcess, proxy: TcpProxy) -> None:
    with Publisher(proxy.url, sleep=_no_sleep) as publisher, pytest.raises(BadStatusError) as err:
        publisher.publish("bad//topic", "x")
    assert err.value.status_code == 400
    assert "invalid_topic" in str(err.value) or "topic" in str(err.value)
    assert proxy.accepted == 1  # not retried


def test_retries_run_out_with_a_connect_error(hub: HubProcess, proxy: TcpProxy) -> None:
    proxy.drop_responses(10)
    with (
        Publisher(proxy.url, retries=2, sleep=_no_sleep) as publisher,
        pytest.raises(ConnectError),
    ):
        publisher.publish("gone", "x")
    assert proxy.accepted == 3


def test_the_token_goes_as_a_bearer_header(tmp_path: Path) -> None:
    args = ["--store", "memory", "--no-ticker", "--jwt-key", SECRET]
    with start_hub(args, log_dir=tmp_path) as hub:
        with pytest.raises(BadStatusError) as err:
            Publisher(hub.url, sleep=_no_sleep).publish("news", "x")
        assert err.value.status_code == 401
        token = mint_token(SECRET, publish=["news"])
        assert Publisher(hub.url, token).publish("news", "x").endswith("-1")
