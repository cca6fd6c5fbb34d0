"""ReconnectPolicy and ReconnectState: delays, jitter, giving up, all without a clock."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssehub.protocol import DEFAULT_RECONNECT_DELAY, ReconnectPolicy, ReconnectState


class FixedRandom(random.Random):
    """A random source whose every draw is ``value`` (0 to 1)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


# -- ReconnectPolicy -----------------------------------------------------------------------


def test_defaults() -> None:
    policy = ReconnectPolicy()
    assert DEFAULT_RECONNECT_DELAY == 3.0
    assert (policy.default_delay, policy.backoff_factor, policy.max_delay) == (3.0, 2.0, 30.0)
    assert (policy.jitter, policy.max_attempts, policy.max_elapsed) == ("equal", None, None)


def test_policy_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ReconnectPolicy().max_delay = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("attempt", "server_retry_ms", "seconds"),
    [
        (1, None, 3.0),  # the browsers' default reconnection time
        (2, None, 6.0),
        (3, None, 12.0),
        (4, None, 24.0),
        (5, None, 30.0),  # capped
        (50, None, 30.0),
        (1, 500, 0.5),  # the server's retry, in milliseconds
        (3, 500, 2.0),
        (1, 0, 0.0),
        (4, 0, 0.0),
        (1, 60_000, 60.0),  # the cap never cuts below the server's retry
        (9, 60_000, 60.0),
        (10**6, 1000, 30.0),  # 2.0 ** 999999 overflows a float: the cap still holds
    ],
)
def test_base_delay(attempt: int, server_retry_ms: int | None, seconds: float) -> None:
    assert ReconnectPolicy().base_delay(attempt, server_retry_ms) == seconds


def test_base_delay_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="attempt counts from 1"):
        ReconnectPolicy().base_delay(0)


def test_backoff_factor_one_means_no_backoff() -> None:
    policy = ReconnectPolicy(backoff_factor=1.0)
    assert [policy.base_delay(n, 2000) for n in (1, 2, 10)] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("jitter", ["full", "equal", "none"])
def test_first_attempt_waits_exactly_the_reconnection_time(jitter: str) -> None:
    """The standard: 'wait a delay equal to the reconnection time'; browsers do."""
    policy = ReconnectPolicy(jitter=jitter)  # type: ignore[arg-type]
    for draw in (0.0, 0.5, 0.999):
        assert policy.next_delay(1, 1500, FixedRandom(draw)) == 1.5


@pytest.mark.parametrize(
    ("jitter", "draw", "seconds"),
    [
        # attempt 3 from 1 s: base 4 s, so 3 s of backoff above the reconnection time
        ("none", 0.0, 4.0),
        ("none", 0.9, 4.0),
        ("full", 0.0, 1.0),
        ("full", 0.5, 2.5),
        ("full", 1.0, 4.0),
        ("equal", 0.0, 2.5),
        ("equal", 0.5, 3.25),
        ("equal", 1.0, 4.0),
    ],
)
def test_jitter_spreads_the_backoff_above_the_reconnection_time(
    jitter: str, draw: float, seconds: float
) -> None:
    policy = ReconnectPolicy(jitter=jitter)  # type: ignore[arg-type]
    assert policy.next_delay(3, 1000, FixedRandom(draw)) == pytest.approx(seconds)


@given(
    st.integers(1, 80),
    st.none() | st.integers(0, 10**7),
    st.sampled_from(["full", "equal", "none"]),
    st.integers(0, 2**32),
)
def test_delay_is_between_the_reconnection_time_and_the_base(
    attempt: int, retry: int | None, jitter: str, seed: int
) -> None:
    policy = ReconnectPolicy(jitter=jitter)  # type: ignore[arg-type]
    delay = policy.next_delay(attempt, retry, random.Random(seed))
    low, high = policy.base_delay(1, retry), policy.base_delay(attempt, retry)
    assert low <= delay <= high or math.isclose(delay, high)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"default_delay": -1.0}, "default_delay"),
        ({"default_delay": math.nan}, "default_delay"),
        ({"backoff_factor": 0.5}, "backoff_factor"),
        ({"backoff_factor": math.inf}, "backoff_factor"),
        ({"max_delay": -0.1}, "max_delay"),
        ({"jitter": "half"}, "jitter"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"max_elapsed": -5.0}, "max_elapsed"),
    ],
)
def test_policy_refuses_nonsense(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReconnectPolicy(**options)  # type: ignore[arg-type]


# -- ReconnectState ------------------------------------------------------------------------


def test_state_starts_healthy_with_a_default_policy() -> None:
    state = ReconnectState()
    assert state.policy == ReconnectPolicy()
    assert isinstance(state.rng, random.Random)
    assert (state.attempts, state.failing_since) == (0, None)
    assert not state.exhausted(now=1e9)


def test_failures_back_off_and_a_healthy_stream_resets() -> None:
    state = ReconnectState(ReconnectPolicy(jitter="none"), rng=random.Random(1))
    state.on_failure(now=100.0)
    assert state.next_delay(server_retry_ms=1000) == 1.0
    state.on_failure(now=101.0)
    state.on_failure(now=103.0)
    assert (state.attempts, state.failing_since) == (3, 100.0)
    assert state.next_delay(1000) == 4.0
    assert state.next_delay() == 12.0  # no retry from the server: 3 s, doubled twice
    state.on_healthy()
    assert (state.attempts, state.failing_since) == (0, None)
    state.on_failure(now=200.0)
    assert state.next_delay(1000) == 1.0
    assert state.failing_since == 200.0


def test_next_delay_before_any_failure_is_the_first_attempts() -> None:
    assert ReconnectState(ReconnectPolicy(jitter="none")).next_delay(250) == 0.25


def test_exhausted_after_max_attempts() -> None:
    """max_attempts=2: the stream ends, two reconnections may fail, then give up."""
    state = ReconnectState(ReconnectPolicy(max_attempts=2))
    verdicts = []
    for now in range(4):
        state.on_failure(now=float(now))
        verdicts.append(state.exhausted(now=float(now)))
    assert verdicts == [False, False, True, True]


def test_max_attempts_zero_never_reconnects() -> None:
    state = ReconnectState(ReconnectPolicy(max_attempts=0))
    state.on_failure(now=0.0)
    assert state.exhausted(now=0.0)


def test_exhausted_after_max_elapsed_seconds_of_failing() -> None:
    state = ReconnectState(ReconnectPolicy(max_elapsed=60.0))
    state.on_failure(now=1000.0)
    assert not state.exhausted(now=1059.9)
    state.on_failure(now=1030.0)  # later failures don't move the start
    assert state.exhausted(now=1060.0)
    state.on_healthy()
    assert not state.exhausted(now=5000.0)


def test_jitter_comes_from_the_injected_random() -> None:
    def delays(seed: int) -> list[float]:
        state = ReconnectState(ReconnectPolicy(jitter="full"), rng=random.Random(seed))
        result = []
        for now in range(6):
            state.on_failure(now=float(now))
            result.append(state.next_delay(1000))
        return result

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)
