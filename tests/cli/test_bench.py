"""``ssehub bench`` at a tiny size: against a hub it spawns, and against a running one."""

from __future__ import annotations

import json

from tests.support.cli import assert_one_line_error, run_cli
from tests.support.processes import HubProcess, free_port


def test_spawned_hub_bench_prints_a_table_with_zero_loss() -> None:
    result = run_cli("bench", "--spawn", "--subscribers", "5", "--events", "20", timeout=120)

    assert result.returncode == 0, result.stderr
    table = result.stdout
    assert "spawned (memory)" in table
    assert "100 of 100" in table
    for measure in ("latency p50", "latency p99", "delivered"):
        assert measure in table
    lost = next(line for line in table.splitlines() if " lost " in line)
    assert lost.split("│")[2].strip() == "0"
    assert "OK" in table
    assert "\x1b" not in table


def test_json_result_against_a_running_hub_counts_every_delivery(hub: HubProcess) -> None:
    result = run_cli("bench", "--url", hub.url, "-s", "4", "-k", "25", "--json", timeout=120)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["expected"] == report["delivered"] == 100
    assert report["lost"] == report["duplicates"] == report["gaps"] == 0
    assert report["latency_p50_ms"] <= report["latency_p99_ms"] <= report["latency_max_ms"]
    assert report["delivery_rate"] > 0


def test_rate_limited_publishing_still_delivers_everything(hub: HubProcess) -> None:
    result = run_cli(
        "bench", "--url", hub.url, "-s", "2", "-k", "10", "--rate", "200", "--json", timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["delivered"] == 20


def test_unreachable_hub_fails_with_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    line = assert_one_line_error(run_cli("bench", "--url", url, "-s", "2", "-k", "2"), 1)

    assert "cannot reach the hub" in line


def test_url_and_spawn_together_is_a_usage_error() -> None:
    line = assert_one_line_error(run_cli("bench", "--url", "http://x", "--spawn"), 2)

    assert "--url or --spawn" in line


def test_unknown_store_for_the_spawned_hub_is_a_usage_error() -> None:
    line = assert_one_line_error(run_cli("bench", "--store", "nosuch"), 2)

    assert "unknown store" in line


def test_zero_subscribers_is_a_usage_error() -> None:
    assert_one_line_error(run_cli("bench", "--subscribers", "0"), 2)
