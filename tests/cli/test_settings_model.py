"""One settings model: flags, SSEHUB_* variables and the TOML config file derive from it.

Issue 10: the heartbeat default was written in four places, ``replay_batch``
and ``prune_interval`` could not be set, and there was no config file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import ssehub.server
from ssehub.cli import cli
from ssehub.cli._serve import ROOTS, SETTINGS, serve
from ssehub.demos import DemoSettings, DemosPlugin
from ssehub.hub import HubConfig, Retention
from ssehub.server import ServerSettings
from tests.support.cli import assert_one_line_error, run_cli

#: Flags and variables that the README and the tests used before the model existed.
KNOWN_FLAGS = {
    "--host": "SSEHUB_HOST",
    "--port": "SSEHUB_PORT",
    "--store": "SSEHUB_STORE",
    "--heartbeat": "SSEHUB_HEARTBEAT",
    "--retry": "SSEHUB_RETRY",
    "--retention-events": "SSEHUB_RETENTION_EVENTS",
    "--retention-age": "SSEHUB_RETENTION_AGE",
    "--max-body": "SSEHUB_MAX_BODY",
    "--max-connections": "SSEHUB_MAX_CONNECTIONS",
    "--max-queue": "SSEHUB_MAX_QUEUE",
    "--max-queue-bytes": "SSEHUB_MAX_QUEUE_BYTES",
    "--flush-interval": "SSEHUB_FLUSH_INTERVAL",
    "--write-timeout": "SSEHUB_WRITE_TIMEOUT",
    "--cors-origin": "SSEHUB_CORS_ORIGINS",
    "--tail": "SSEHUB_TAIL",
    "--llm-url": "SSEHUB_LLM_URL",
    "--llm-model": "SSEHUB_LLM_MODEL",
    "--ticker": "SSEHUB_TICKER",
    "--demo-interval": "SSEHUB_DEMO_INTERVAL",
    "--log-level": "SSEHUB_LOG_LEVEL",
    "--access-log": "SSEHUB_ACCESS_LOG",
    "--demos": "SSEHUB_DEMOS",
    "--replay-batch": "SSEHUB_REPLAY_BATCH",
    "--prune-interval": "SSEHUB_PRUNE_INTERVAL",
    "--chat-token-delay": "SSEHUB_CHAT_TOKEN_DELAY",
}


def _leaf_fields(cls: type[Any], prefix: str) -> set[str]:
    keys: set[str] = set()
    for f in dataclasses.fields(cls):
        if f.name in ("hub", "retention"):
            keys |= _leaf_fields(HubConfig if f.name == "hub" else Retention, f"{prefix}.{f.name}")
        else:
            keys.add(f"{prefix}.{f.name}")
    return keys


def test_every_field_has_a_flag_a_variable_and_help() -> None:
    expected = _leaf_fields(ServerSettings, "server") | _leaf_fields(DemoSettings, "demos")
    assert {s.key for s in SETTINGS} == expected
    assert all(s.help for s in SETTINGS)
    assert len({s.flag for s in SETTINGS}) == len(SETTINGS)
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    options = {opt for param in serve.params for opt in param.opts}
    envs = {getattr(param, "envvar", None) for param in serve.params}
    assert {s.flag for s in SETTINGS} <= options
    assert {s.env for s in SETTINGS} <= envs


def test_every_existing_flag_and_variable_still_works() -> None:
    by_flag = {s.flag: s.env for s in SETTINGS}
    assert {flag: by_flag.get(flag) for flag in KNOWN_FLAGS} == KNOWN_FLAGS


def test_defaults_come_from_the_dataclasses() -> None:
    resolved = _resolve([])
    assert resolved["server"] == ServerSettings()
    assert resolved["demos"] == dataclasses.replace(DemoSettings(), enabled=True)  # --demos
    assert set(ROOTS) <= set(resolved)


def _resolve(
    args: list[str], env: dict[str, str] | None = None, monkeypatch: Any = None
) -> dict[str, Any]:
    """Run ``ssehub serve ARGS`` in-process up to the point where it would serve."""
    seen: dict[str, Any] = {}

    def fake_run(settings: ServerSettings, *, plugins: Any = ()) -> None:
        seen["server"] = settings
        demos = [plugin for plugin in plugins if isinstance(plugin, DemosPlugin)]
        seen["demos"] = demos[0].settings if demos else None
        seen["plugins"] = plugins

    patch = pytest.MonkeyPatch()
    patch.setattr(ssehub.server, "run", fake_run)
    patch.setattr(ssehub.server, "check_store", lambda settings: None)
    try:
        result = CliRunner().invoke(
            cli, ["serve", "--demos", *args], env=env or {}, catch_exceptions=False
        )
    finally:
        patch.undo()
    assert result.exit_code == 0, result.output
    return seen


def test_flag_beats_variable_beats_config_file_beats_default(tmp_path: Path) -> None:
    config = tmp_path / "ssehub.toml"
    config.write_text(
        '[server]\nport = 9001\nmax_connections = 7\n[server.hub]\nheartbeat_interval = "3s"\n'
        "replay_batch = 50\n[server.retention]\nmax_age = 0\n[demos]\nchat_token_delay = 0.5\n"
    )
    env = {"SSEHUB_PORT": "9002", "SSEHUB_HEARTBEAT": "4s"}
    seen = _resolve(["--config", str(config), "--heartbeat", "5s"], env)
    server: ServerSettings = seen["server"]
    assert server.hub.heartbeat_interval == 5.0  # flag
    assert server.port == 9002  # variable over file
    assert server.max_connections == 7  # file over default
    assert server.hub.replay_batch == 50
    assert server.retention.max_age is None  # 0 = unbounded
    assert server.hub.retry == 3000  # default
    assert seen["demos"].chat_token_delay == 0.5


def test_cors_origins_split_on_commas_and_tail_files_on_colons(tmp_path: Path) -> None:
    seen = _resolve(
        ["--cors-origin", "https://a.example,https://b.example"],
        {"SSEHUB_TAIL": f"{tmp_path}/a.log:{tmp_path}/b.log"},
    )
    assert seen["server"].cors_origins == ("https://a.example", "https://b.example")
    assert seen["demos"].tail_files == (f"{tmp_path}/a.log", f"{tmp_path}/b.log")


def test_defaults_round_trip_through_check(tmp_path: Path) -> None:
    printed = run_cli("config", "--defaults")
    assert printed.returncode == 0, printed.stderr
    assert "[server.hub]" in printed.stdout
    assert "[demos]" in printed.stdout
    path = tmp_path / "defaults.toml"
    path.write_text(printed.stdout)
    checked = run_cli("config", "--check", str(path))
    assert (checked.returncode, checked.stdout.strip()) == (0, "ok")
    seen = _resolve(["--config", str(path)])
    assert seen["server"] == ServerSettings()
    assert seen["demos"] == dataclasses.replace(DemoSettings(), enabled=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nhb = 1\n", "unknown key 'server.hb'"),
        ("port = 1\n", "unknown key 'port'"),
        ('[server]\nport = "eighty"\n', "key 'server.port': expected an integer"),
        ("[server]\nport = 70000\n", "key 'server.port': 70000 is out of range"),
        ('[server.hub]\nheartbeat_interval = "soon"\n', "key 'server.hub.heartbeat_interval'"),
        ("[server]\nhub = 3\n", "a table, not a value 'server.hub'"),
        ("[server]\naccess_log = 1\n", "expected true or false"),
        ("[server\nport = 1\n", "not valid TOML"),
        (b"[server]\nhost = '\xff'\n", "not UTF-8"),
        ("[server.hub]\nmax_event_bytes = 99999999\n", "inconsistent settings: max_event_bytes"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str | bytes, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    for args in (["config", "--check", str(path)], ["serve", "--config", str(path)]):
        result = run_cli(*args)
        assert_one_line_error(result, 2)
        assert str(path) in result.stderr, result.stderr
        assert expected in result.stderr, result.stderr


def test_a_missing_file_a_directory_and_a_huge_file_are_one_line(tmp_path: Path) -> None:
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"# " + b"x" * (2 * 1024 * 1024) + b"\n")
    cases = {
        str(tmp_path / "nope.toml"): "no such file",
        str(tmp_path): "is a directory",
        str(huge): "larger than",
    }
    for path, expected in cases.items():
        for args in (["config", "--check", path], ["serve", "--config", path]):
            result = run_cli(*args)
            assert_one_line_error(result, 2)
            assert path in result.stderr, result.stderr
            assert expected in result.stderr, result.stderr


def test_the_readme_table_is_the_model() -> None:
    from ssehub.cli._config import settings_table

    readme = (Path(__file__).parents[2] / "README.md").read_text("utf-8")
    start = readme.index("<!-- settings-table:start -->\n") + len("<!-- settings-table:start -->\n")
    end = readme.index("<!-- settings-table:end -->")
    assert readme[start:end] == settings_table()
    for flag in ("--demo-interval", "--log-level", "--access-log", "--config", "--demos"):
        assert f"`{flag}`" in readme[start:end]


def test_contradicting_flags_are_one_line_before_serving() -> None:
    """Issue 9, finding 5: an event bound over the queue bound closes every subscriber."""
    result = run_cli("serve", "--max-event-bytes", "99999999", "--port", "0")
    line = assert_one_line_error(result, 2)
    assert "max_event_bytes (99999999) exceeds max_queue_bytes" in line
