"""``ssehub serve`` as a user runs it: a subprocess, one-line errors, documented exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, run_cli
from tests.support.processes import HubProcess, free_port


def serve(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssehub", "serve", "--host", "127.0.0.1", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("redis://127.0.0.1:1/0", "cannot open the store 'redis://127.0.0.1:1/0'"),
        ("sqlite:/proc/no/such/dir/hub.db", "cannot open SQLite store"),
    ],
)
def test_an_unusable_store_is_one_line_and_exit_1(store: str, message: str) -> None:
    result = serve("--store", store, "--port", str(free_port()))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_an_unknown_store_kind_is_a_usage_error(tmp_path: Path) -> None:
    result = serve("--store", "postgres://x")
    assert result.returncode == 2
    assert "use memory, sqlite:PATH or redis://" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_exit_1_without_traceback(hub: HubProcess) -> None:
    result = serve("--store", "memory", "--port", str(hub.port))
    assert result.returncode == 1
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_admin_port_is_exit_1_without_traceback(hub: HubProcess) -> None:
    result = serve("--store", "memory", "--port", str(free_port()), "--admin-port", str(hub.port))
    assert result.returncode == 1
    assert "cannot listen on the admin port" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout


def test_help_explains_the_stores_and_shows_examples() -> None:
    result = serve("--help")
    assert result.returncode == 0
    for text in ("sqlite:PATH", "redis://", "curl -N http://localhost:8004", "SSEHUB_PORT"):
        assert text in result.stdout


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ssehub", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "serve" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--jwt-key", "secret", "--jwt-alg", "none"], "'none' is never allowed"),
        (["--jwt-key", "@/nonexistent/key.pem"], "cannot read it"),
        (["--jwt-key", "@/"], "cannot read it"),
        (["--jwt-key", "@{not_pem}"], "not a PEM file"),
        (["--workers", "abc"], "--workers must be a number or auto"),
        (["--jwks-url", "file:///etc/passwd"], "unusable --jwks-url"),
        (["--admin-port", "0x1"], "--admin-port"),
        (["--admin-port", "9100", "--port", "9100"], "--admin-port must differ from --port"),
        (["--admin-port", "9100", "--workers", "2"], "--admin-port works with one process"),
    ],
)
def test_a_bad_access_or_worker_flag_is_one_line_before_serving(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    not_pem = tmp_path / "key.txt"
    not_pem.write_text("just text\n")
    args = [arg.format(not_pem=not_pem) for arg in args]
    shared = "--workers" in args  # a store that several processes can share
    store = ["--store", f"sqlite:{tmp_path / 'hub.db'}" if shared else "memory"]
    port = [] if "--port" in args else ["--port", "0"]
    result = run_cli("serve", *store, *port, *args)
    line = assert_one_line_error(result, 2)
    assert expected in line
