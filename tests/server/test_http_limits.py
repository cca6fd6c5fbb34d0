"""The connection cap fitted to the open-file limit, and rate-limited refusal logs."""

from __future__ import annotations

import logging

import pytest

from ssehub.server import ServerSettings
from ssehub.server._http import (
    DESCRIPTOR_RESERVE,
    MAX_SHARED_ADDRESSES,
    ConnectionGate,
    HttpLimits,
    plan_connection_limits,
)
from ssehub.server._run import connection_cap_note


def test_the_cap_is_kept_when_descriptors_can_hold_it() -> None:
    cap, ceiling = plan_connection_limits(1000, 65536, 20)
    assert cap == 1000
    assert ceiling == 1250  # a quarter more, for 503 answers


def test_the_cap_and_ceiling_stay_below_the_descriptor_limit() -> None:
    cap, ceiling = plan_connection_limits(20_000, 256, 12)
    budget = 256 - 12 - DESCRIPTOR_RESERVE
    assert cap == budget * 4 // 5
    assert cap < ceiling <= budget


@pytest.mark.parametrize("limit", [1, 16, 70, 100])
def test_even_an_absurd_descriptor_limit_gives_a_usable_plan(limit: int) -> None:
    cap, ceiling = plan_connection_limits(20_000, limit, 10)
    assert 1 <= cap < ceiling


def test_refusals_are_logged_once_then_at_most_every_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    gate = ConnectionGate(HttpLimits(), clock=lambda: now[0], log_interval=10.0)
    with caplog.at_level(logging.WARNING, logger="ssehub.server"):
        for _ in range(1000):
            gate.note("full", "connection limit reached")
        now[0] = 10.0
        gate.note("full", "connection limit reached")
    assert gate.refused == {"full": 1001}
    assert [r.getMessage() for r in caplog.records] == [
        "connection limit reached (1 since the last report)",
        "connection limit reached (1000 since the last report)",
    ]


def test_connections_to_one_local_address_share_its_tuple_and_the_cache_is_bounded() -> None:
    gate = ConnectionGate(HttpLimits())
    first, second = ("127.0.0.1", int("8004")), ("127.0.0.1", int("8004"))
    assert first is not second
    assert gate.shared_address(first) is first
    assert gate.shared_address(second) is first  # the second connection holds no tuple of its own
    assert gate.shared_address(None) is None
    for port in range(MAX_SHARED_ADDRESSES * 2):
        assert gate.shared_address(("10.0.0.1", port)) == ("10.0.0.1", port)
    assert len(gate._addresses) == MAX_SHARED_ADDRESSES


def test_a_default_cap_lowered_to_the_open_file_limit_is_only_an_info_line() -> None:
    settings = ServerSettings()
    limits = HttpLimits(max_connections=settings.max_connections - 1000)
    level, line = connection_cap_note(settings, limits, 20_000) or (0, "")
    assert level == logging.INFO
    assert f"serving at most {limits.max_connections} connections" in line


def test_a_cap_the_user_asked_for_that_cannot_be_honoured_is_a_warning() -> None:
    settings = ServerSettings(max_connections=19_999)
    level, line = connection_cap_note(settings, HttpLimits(max_connections=15_000), 20_000) or (
        0,
        "",
    )
    assert level == logging.WARNING
    assert line.startswith("--max-connections 19999 cannot be honoured")


def test_a_cap_that_fits_needs_no_line() -> None:
    settings = ServerSettings(max_connections=100)
    assert connection_cap_note(settings, HttpLimits(max_connections=100), 20_000) is None
