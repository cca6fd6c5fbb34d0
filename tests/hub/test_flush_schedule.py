"""When the fan-out flushes: every event at once when quiet, coalesced when busy.

:func:`next_flush_due` is the whole rule (loop times in seconds); the flush
itself is exercised end to end in ``test_hub.py`` and by the benchmarks.
"""

from __future__ import annotations

import math

import pytest

from ssehub.hub._fanout import next_flush_due

INTERVAL = 0.010


def test_the_first_flush_is_due_at_once() -> None:
    assert next_flush_due(-math.inf, -math.inf, INTERVAL) == -math.inf


def test_short_writes_leave_the_next_flush_one_interval_after_the_last_began() -> None:
    # 100 ev/s to 1,000 subscribers: 4 ms of writes, an event every 10 ms
    assert next_flush_due(1.000, 1.004, INTERVAL) == pytest.approx(1.010)


def test_writes_over_half_an_interval_are_followed_by_as_long_a_pause() -> None:
    assert next_flush_due(1.000, 1.008, INTERVAL) == pytest.approx(1.016)


def test_writes_longer_than_the_interval_are_followed_by_as_long_a_pause() -> None:
    # a burst to 10,000 subscribers: 200 ms of writes, then 200 ms for everything else
    assert next_flush_due(1.000, 1.200, INTERVAL) == pytest.approx(1.400)


def test_a_zero_interval_writes_every_event_as_soon_as_the_last_writes_ended() -> None:
    assert next_flush_due(1.000, 1.200, 0.0) == 1.200
