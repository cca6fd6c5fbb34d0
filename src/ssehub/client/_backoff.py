"""Stand-in reconnect policy, until ``ssehub.protocol.ReconnectPolicy`` lands.

Conventions: durations are float seconds, ``retry`` from the stream is integer
milliseconds.  An *attempt* is one try to (re)open the stream; the attempts
count and the elapsed time restart after a healthy stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ReconnectPolicy", "ReconnectState"]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How long to wait before reconnecting, and when to give up.

    The first reconnect waits exactly the reconnection time: the stream's
    ``retry`` or else ``initial_delay``.  Each further consecutive failure
    multiplies it by ``multiplier`` up to ``max_delay`` (never below the
    stream's ``retry``), then takes away a random part of up to ``jitter``
    (0-1) of it.  ``max_attempts`` bounds the consecutive attempts and
    ``max_elapsed`` the seconds since the first failure; ``None``: no bound.
    """

    initial_delay: float = 3.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_attempts: int | None = None
    max_elapsed: float | None = None


class ReconnectState:
    """One client's place in the policy: consecutive failures and when they began."""

    def __init__(self, policy: ReconnectPolicy) -> None:
        self.policy = policy
        self.attempts = 0
        self._first_failure: float | None = None

    def healthy(self) -> None:
        """The stream delivered an event: start counting afresh."""
        self.attempts = 0
        self._first_failure = None

    def next_delay(
        self, *, now: float, retry: int | None, random: Callable[[], float]
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up."""
        policy = self.policy
        if self._first_failure is None:
            self._first_failure = now
        if policy.max_attempts is not None and self.attempts >= policy.max_attempts:
            return None
        base = retry / 1000 if retry is not None else policy.initial_delay
        delay = base
        if self.attempts > 0:
            ceiling = max(policy.max_delay, base)
            delay = min(ceiling, base * policy.multiplier**self.attempts)
            delay -= delay * policy.jitter * random()
        if (
            policy.max_elapsed is not None
            and now + delay - self._first_failure > policy.max_elapsed
        ):
            return None
        self.attempts += 1
        return delay
