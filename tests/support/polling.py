"""Bounded waits: poll a condition until it holds, or fail saying what never happened.

The one way tests wait for something.  A wait is always bounded (``timeout``
seconds, a bound for a *failing* test, never a measurement) and fails with an
``AssertionError`` naming ``what`` was awaited.  The interval between checks is
a polling rate, not a wait for anything.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["DEADLINE", "apoll_until", "poll_until"]

#: The default bound, in seconds, for a wait that should succeed in well under a second.
DEADLINE = 20.0


def poll_until(
    condition: Callable[[], object],
    what: str,
    timeout: float = DEADLINE,
    *,
    interval: float = 0.02,
) -> None:
    """Call ``condition()`` until it is truthy; ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def apoll_until(
    condition: Callable[[], object | Awaitable[object]],
    what: str,
    timeout: float = DEADLINE,
    *,
    interval: float = 0.01,
) -> None:
    """Async :func:`poll_until`; ``condition`` may be a plain or a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)
