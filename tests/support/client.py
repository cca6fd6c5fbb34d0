"""Scripts and hooks for ``EventSource`` tests against :class:`.fault_server.FaultServer`.

Time is injected: :class:`Recorder`'s ``sleep`` records the delays the client
asked for and returns at once; :class:`UpperRandom`/:class:`LowerRandom` fix the
jitter, so every delay can be asserted exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssehub.client import EventSource, Opened, Reconnecting
from ssehub.errors import ClientError
from ssehub.protocol import Event
from tests.support.fault_server import Action, Received, event, head

__all__ = ["NUMBERED", "LowerRandom", "Recorder", "UpperRandom", "resuming", "take"]


class UpperRandom(random.Random):
    """Jitter that always draws the top of its range: delays are exactly the policy's base."""

    def uniform(self, a: float, b: float) -> float:
        return b


class LowerRandom(random.Random):
    """Jitter that always draws the bottom of its range."""

    def uniform(self, a: float, b: float) -> float:
        return a


@dataclass
class Recorder:
    """Hooks and an injected sleep that remember what the client did."""

    sleeps: list[float] = field(default_factory=list)
    errors: list[ClientError] = field(default_factory=list)
    reconnects: list[Reconnecting] = field(default_factory=list)
    opens: list[Opened] = field(default_factory=list)
    on_sleep: Callable[[int], None] | None = None

    def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))

    def options(self) -> dict[str, Any]:
        return {
            "sleep": self.sleep,
            "rng": UpperRandom(),
            "on_error": self.errors.append,
            "on_reconnect": self.reconnects.append,
            "on_open": self.opens.append,
        }


def take(source: EventSource, count: int) -> list[Event]:
    events: list[Event] = []
    for item in source:
        events.append(item)
        if len(events) == count:
            break
    return events


NUMBERED = [event(f"event {n}", id=str(n)) for n in range(1, 6)]


def resuming(cuts: Sequence[int | None]) -> Callable[[int, Received], Sequence[Action]]:
    """A server that resumes after Last-Event-ID; connection n stops after ``cuts[n]`` bytes."""

    def script(n: int, request: Received) -> Sequence[Action]:
        after = int(request.headers.get("last-event-id", "0"))
        body = b"".join(NUMBERED[after:])
        cut = cuts[n] if n < len(cuts) else None
        return [head(), body if cut is None else body[:cut]]

    return script
