"""Every command documents itself: ``--help`` exits 0 and shows examples and exit codes."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cli


@pytest.mark.parametrize("command", ["listen", "publish", "bench", "serve"])
def test_every_command_help_exits_0_and_shows_an_example(command: str) -> None:
    result = run_cli(command, "--help")

    assert result.returncode == 0, result.stderr
    assert "Examples:" in result.stdout
    assert f"ssehub {command}" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("command", ["listen", "publish", "bench"])
def test_help_states_the_exit_codes(command: str) -> None:
    result = run_cli(command, "-h")

    assert result.returncode == 0
    assert "Exit codes:" in result.stdout
    assert "130" in result.stdout


def test_group_help_lists_the_client_commands() -> None:
    result = run_cli("--help")

    assert result.returncode == 0
    for command in ("listen", "publish", "bench", "serve"):
        assert command in result.stdout
