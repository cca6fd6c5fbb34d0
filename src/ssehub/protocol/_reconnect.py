"""When to reconnect: a sans-I/O reconnection policy for event-stream clients.

Conventions: delays are float seconds; the server's ``retry`` is integer
milliseconds, exactly as :attr:`EventStreamParser.retry` holds it.  Nothing
here sleeps or reads a clock: the caller passes ``now`` (any monotonic clock,
in seconds) and the random source is injected, so tests are deterministic.

The delay before reconnection attempt ``n`` (``n = 1`` right after a stream
ends or a connection fails) is::

    initial = server retry / 1000 if the server sent one, else default_delay
    base(n) = min(max(max_delay, initial), initial * backoff_factor ** (n - 1))

and the jitter spreads the backoff part, ``extra = base(n) - initial``:
``"full"`` waits ``initial + uniform(0, extra)``, ``"equal"`` waits
``initial + extra / 2 + uniform(0, extra / 2)``, ``"none"`` waits ``base(n)``.
The delay is thus never shorter than the reconnection time, as the standard
asks ("wait a delay equal to the reconnection time of the event source.
Optionally, wait some more"), and attempt 1 waits exactly that time, as
browsers do; a server spreads a crowd of clients out by sending each a
different ``retry``.  A client calls :meth:`ReconnectState.on_healthy` once a
stream proves healthy (say, its first event arrived), which starts the next
round of failures at attempt 1 again.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULT_RECONNECT_DELAY", "Jitter", "ReconnectPolicy", "ReconnectState"]

#: The reconnection time when the server sent no ``retry``, in seconds (browsers use 3 s).
DEFAULT_RECONNECT_DELAY = 3.0

Jitter = Literal["full", "equal", "none"]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How long to wait before each reconnection attempt, and when to give up.

    ``default_delay``: seconds, used when the server sent no ``retry``.
    ``backoff_factor``: growth per failed attempt in a row (``1.0``: none).
    ``max_delay``: seconds, the cap on the grown delay (never below the server's
    ``retry``).  ``jitter``: ``"full"``, ``"equal"`` or ``"none"``, applied to
    the part of the delay above the reconnection time.
    ``max_attempts``: how many reconnection attempts in a row may be made
    (``None``: no limit).  ``max_elapsed``: seconds of failing in a row after
    which to give up (``None``: no limit).
    """

    default_delay: float = DEFAULT_RECONNECT_DELAY
    backoff_factor: float = 2.0
    max_delay: float = 30.0
    jitter: Jitter = "equal"
    max_attempts: int | None = None
    max_elapsed: float | None = None

    def __post_init__(self) -> None:
        if not self.default_delay >= 0:
            raise ValueError(f"default_delay must be >= 0 seconds: {self.default_delay!r}")
        if not 1 <= self.backoff_factor < math.inf:
            raise ValueError(f"backoff_factor must be finite and >= 1: {self.backoff_factor!r}")
        if not self.max_delay >= 0:
            raise ValueError(f"max_delay must be >= 0 seconds: {self.max_delay!r}")
        if self.jitter not in ("full", "equal", "none"):
            raise ValueError(f"jitter must be 'full', 'equal' or 'none': {self.jitter!r}")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError(f"max_attempts must be >= 0 or None: {self.max_attempts!r}")
        if self.max_elapsed is not None and not self.max_elapsed >= 0:
            raise ValueError(f"max_elapsed must be >= 0 seconds or None: {self.max_elapsed!r}")

    def base_delay(self, attempt: int, server_retry_ms: int | None = None) -> float:
        """The delay in seconds before attempt ``attempt`` (from 1), before jitter."""
        if attempt < 1:
            raise ValueError(f"attempt counts from 1: {attempt!r}")
        initial = self.default_delay if server_retry_ms is None else server_retry_ms / 1000
        cap = max(self.max_delay, initial)
        try:
            grown = initial * self.backoff_factor ** (attempt - 1)
        except OverflowError:
            return cap
        return min(cap, grown)

    def next_delay(self, attempt: int, server_retry_ms: int | None, rng: random.Random) -> float:
        """The jittered delay in seconds before attempt ``attempt`` (from 1)."""
        base = self.base_delay(attempt, server_retry_ms)
        initial = self.base_delay(1, server_retry_ms)
        extra = base - initial
        if self.jitter == "full":
            return initial + rng.uniform(0.0, extra)
        if self.jitter == "equal":
            return initial + extra / 2 + rng.uniform(0.0, extra / 2)
        return base


class ReconnectState:
    """The failures in a row of one client, under one :class:`ReconnectPolicy`.

    Call :meth:`on_failure` each time a stream ends or a connection attempt
    fails, then :meth:`exhausted` to decide whether to give up, then wait
    :meth:`next_delay` seconds and reconnect.  Call :meth:`on_healthy` once the
    new stream is healthy.  ``rng`` is the source of jitter (a fresh
    ``random.Random()`` if not given).
    """

    def __init__(
        self, policy: ReconnectPolicy | None = None, *, rng: random.Random | None = None
    ) -> None:
        self.policy = policy if policy is not None else ReconnectPolicy()
        self.rng = rng if rng is not None else random.Random()
        #: Failures since the last healthy stream: the next attempt's number.
        self.attempts = 0
        #: ``now`` at the first of those failures (``None`` while healthy).
        self.failing_since: float | None = None

    def on_failure(self, now: float) -> None:
        """Record that the stream ended or a connection attempt failed at ``now``."""
        self.attempts += 1
        if self.failing_since is None:
            self.failing_since = now

    def on_healthy(self) -> None:
        """Record a healthy stream: the next failure starts again at attempt 1."""
        self.attempts = 0
        self.failing_since = None

    def next_delay(self, server_retry_ms: int | None = None) -> float:
        """Seconds to wait before the next attempt (pass the parser's ``retry``)."""
        return self.policy.next_delay(max(self.attempts, 1), server_retry_ms, self.rng)

    def exhausted(self, now: float) -> bool:
        """Whether to give up instead of making attempt number :attr:`attempts`."""
        policy = self.policy
        if policy.max_attempts is not None and self.attempts > policy.max_attempts:
            return True
        return (
            policy.max_elapsed is not None
            and self.failing_since is not None
            and now - self.failing_since >= policy.max_elapsed
        )
