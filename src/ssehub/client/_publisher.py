"""Publishing from Python: :class:`Publisher` (sync) and :class:`AsyncPublisher`.

Both ``POST /topics/{topic}`` a JSON body ``{"data": …, "event": …, "private": …}``
with the token as ``Authorization: Bearer …`` and return the event's id.

Retries can't duplicate: every publish carries an ``Idempotency-Key`` (a random
one when the caller gives none), and the hub stores at most one event per key
(a repeat answers the first event's id).  So a publish whose answer was lost —
the connection broke after the hub stored the event — is simply sent again.
What is retried, at most ``retries`` more times with exponential backoff and
full jitter (``backoff`` seconds doubling up to ``max_backoff``, or the
server's ``Retry-After`` when larger): a connection that could not be opened or
broke before an answer, a read timeout, and the statuses in
:data:`RETRY_STATUSES`.  Any other status raises
:class:`~ssehub.errors.BadStatusError` at once, with the hub's JSON error
message.  Connection failures that outlast the retries raise
:class:`~ssehub.errors.ConnectError` (or :class:`~ssehub.errors.ReadTimeoutError`).

The hub's ``POST`` takes one event; :meth:`Publisher.publish_many` sends a
batch in order over one kept-alive connection, each event with its own key,
and returns their ids.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from ..errors import BadStatusError, ConnectError, ReadTimeoutError

__all__ = ["RETRY_STATUSES", "AsyncPublisher", "Publisher"]

#: Statuses a publish retries: timeouts, rate limits and passing server trouble.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class _Call:
    """One publish, as sent on every attempt (the same key each time)."""

    path: str
    request: dict[str, Any]  # keyword arguments of ``client.post``


class _Policy:
    """What both publishers share: the request, the answer's meaning, the backoff."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float,
        retries: int,
        backoff: float,
        max_backoff: float,
        rng: random.Random | None,
    ) -> None:
        if retries < 0 or backoff < 0 or max_backoff < 0 or timeout <= 0:
            raise ValueError("retries, backoff and max_backoff must be >= 0, timeout > 0")
        self.base_url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.rng = rng or random.Random()

    def call(
        self,
        topic: str,
        data: Any,
        event: str | None,
        private: bool,
        idempotency_key: str | None,
    ) -> _Call:
        body: dict[str, Any] = {"data": data}
        if event is not None:
            body["event"] = event
        if private:
            body["private"] = True
        key = idempotency_key or uuid.uuid4().hex
        path = "/topics/" + quote(topic, safe="/~:@")
        request = {
            "url": self.base_url + path,
            "json": body,
            "headers": {**self.headers, "Idempotency-Key": key},
            "timeout": self.timeout,
        }
        return _Call(path, request)

    def outcome(self, response: httpx.Response) -> str | None:
        """The event id; ``None`` for a status worth retrying; raises for any other."""
        if response.status_code == 201:
            event_id = response.json().get("id")
            if not isinstance(event_id, str):
                raise BadStatusError(201, "the hub answered 201 without an event id")
            return event_id
        if response.status_code in RETRY_STATUSES:
            return None
        raise BadStatusError(response.status_code, _message(response))

    def retry_after(
        self, attempt: int, call: _Call, response: httpx.Response | None, exc: Exception | None
    ) -> float:
        """Seconds to wait before retry ``attempt`` (1-based); raises when retries ran out."""
        if attempt > self.retries:
            self.give_up(call, response, exc)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        wait = self.rng.uniform(0, ceiling)
        if response is not None:
            hint = response.headers.get("retry-after", "")
            if hint.isascii() and hint.isdigit():
                wait = max(wait, min(float(hint), self.max_backoff))
        return wait

    def give_up(
        self, call: _Call, response: httpx.Response | None, exc: Exception | None
    ) -> NoReturn:
        if response is not None:
            raise BadStatusError(response.status_code, _message(response))
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            raise ReadTimeoutError(f"no answer to POST {call.path}") from exc
        raise ConnectError(f"could not publish to {self.base_url}{call.path}: {exc}") from exc


def _message(response: httpx.Response) -> str:
    try:
        payload = response.json()
        detail = payload.get("message") or payload.get("error")
    except (ValueError, AttributeError):
        detail = response.text[:200]
    return f"the hub answered HTTP {response.status_code}: {detail}"


def _events(events: Iterable[Mapping[str, Any] | str]) -> Iterable[dict[str, Any]]:
    for item in events:
        yield {"data": item} if isinstance(item, str) else dict(item)


class Publisher:
    """Publish events to a hub at ``url`` (``http://host:port``); see the module docstring.

    ``token``: a JWT sent as ``Authorization: Bearer``.  ``timeout`` (float
    seconds) bounds each attempt.  ``client``: your own ``httpx.Client``
    (not closed by :meth:`close`).  ``sleep`` and ``rng`` are injectable for tests.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._policy = _Policy(
            url,
            token,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            rng=rng,
        )
        self._own = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._sleep = sleep

    def publish(
        self,
        topic: str,
        data: Any,
        event: str | None = None,
        private: bool = False,
        idempotency_key: str | None = None,
    ) -> str:
        """Publish one event; return its id.  ``data`` that is not a ``str`` is sent as JSON."""
        call = self._policy.call(topic, data, event, private, idempotency_key)
        for attempt in itertools.count(1):
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                response = self._client.post(**call.request)
                event_id = self._policy.outcome(response)
                if event_id is not None:
                    return event_id
            except httpx.TransportError as exc:
                error = exc
            self._sleep(self._policy.retry_after(attempt, call, response, error))
        raise AssertionError("unreachable")

    def publish_many(self, events: Iterable[Mapping[str, Any] | str], topic: str) -> list[str]:
        """Publish ``events`` to ``topic`` in order; return their ids.

        Each event is a ``str`` (the data) or a mapping of :meth:`publish`'s
        keyword arguments (``data``, ``event``, ``private``, ``idempotency_key``).
        """
        return [self.publish(topic, **fields) for fields in _events(events)]

    def close(self) -> None:
        if self._own:
            self._client.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPublisher:
    """:class:`Publisher` for asyncio: the same arguments, ``await`` its verbs, ``aclose()``."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._policy = _Policy(
            url,
            token,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            rng=rng,
        )
        self._own = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._sleep = sleep

    async def publish(
        self,
        topic: str,
        data: Any,
        event: str | None = None,
        private: bool = False,
        idempotency_key: str | None = None,
    ) -> str:
        """Publish one event; return its id (see :meth:`Publisher.publish`)."""
        call = self._policy.call(topic, data, event, private, idempotency_key)
        for attempt in itertools.count(1):
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                response = await self._client.post(**call.request)
                event_id = self._policy.outcome(response)
                if event_id is not None:
                    return event_id
            except httpx.TransportError as exc:
                error = exc
            await self._sleep(self._policy.retry_after(attempt, call, response, error))
        raise AssertionError("unreachable")

    async def publish_many(
        self, events: Iterable[Mapping[str, Any] | str], topic: str
    ) -> list[str]:
        """Publish ``events`` to ``topic`` in order; return their ids (see :class:`Publisher`)."""
        return [await self.publish(topic, **fields) for fields in _events(events)]

    async def aclose(self) -> None:
        if self._own:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncPublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
