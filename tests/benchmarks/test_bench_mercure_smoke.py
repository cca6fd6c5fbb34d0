"""``benchmarks/bench_mercure.py`` at tiny sizes: both endpoints deliver every event.

Issue 13.  Checks the measuring machinery (every stream of both servers gets
every published event, or the run times out), not speed: no timing is asserted.
"""

from __future__ import annotations

from benchmarks import bench_mercure


def test_both_endpoints_are_measured_with_every_event_delivered() -> None:
    figures = bench_mercure.measure(streams=5, events=3, repeat=1)
    assert set(figures) == {"topic API", "Mercure"}
    for row in figures.values():
        assert row["deliveries_per_s"] > 0
