"""Options, environment variables and a TOML config file, derived from settings dataclasses.

A *settings root* is a frozen dataclass whose fields carry command-line
metadata (``ssehub.server.option``: ``help``, ``flag``, ``env``, ``unit``,
``min``/``max``, ``choices``, ``metavar``, ``path``, ``split``); a field
whose type is itself such a dataclass is a nested table.  From the roots this
module derives, for every leaf field, one :class:`Setting`: its click option,
its ``SSEHUB_*`` variable, its dotted TOML key (``server.hub.retry``) and its
default — read from the dataclass, never restated.

Precedence (click's own): command line > environment > config file
(``ctx.default_map``) > the dataclass default.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ._params import Duration, format_duration

__all__ = [
    "MAX_CONFIG_BYTES",
    "ConfigError",
    "Setting",
    "build",
    "click_options",
    "defaults_toml",
    "load_config",
    "markdown_table",
    "settings_of",
]

#: A config file larger than this is refused unread.
MAX_CONFIG_BYTES = 1024 * 1024


class ConfigError(ValueError):
    """A config file can't be used; the message is one line naming the file and key."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One leaf field of a settings root, with everything derived from it."""

    path: tuple[str, ...]
    kind: str  # duration | int | str | bool | strs
    optional: bool
    default: Any
    meta: Mapping[str, Any]

    @property
    def key(self) -> str:
        """The dotted TOML key: ``server.hub.heartbeat_interval``."""
        return ".".join(self.path)

    @property
    def name(self) -> str:
        """The click parameter name (unique across roots)."""
        return "__".join(self.path)

    @property
    def flag(self) -> str:
        return str(self.meta.get("flag") or "--" + self.path[-1].replace("_", "-"))

    @property
    def env(self) -> str:
        return str(self.meta.get("env") or "SSEHUB_" + self.flag[2:].upper().replace("-", "_"))

    @property
    def help(self) -> str:
        return str(self.meta.get("help", ""))

    def shown_default(self) -> str:
        """The default as a person would type it on the command line."""
        value = self.default
        if value is None:
            return "0" if self.kind in ("int", "duration") else "unset"
        if self.kind == "duration":
            return format_duration(value)
        if self.kind == "bool":
            return "on" if value else "off"
        if self.kind == "strs":
            return ",".join(value) or "none"
        return str(value)


def _kind(hint: Any) -> tuple[str, bool]:
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
    if hint is bool:
        return "bool", optional
    if hint is int:
        return "int", optional
    if hint is float:
        return "duration", optional
    if hint is str:
        return "str", optional
    if typing.get_origin(hint) is tuple:
        return "strs", optional
    raise TypeError(f"unsupported settings type {hint!r}")  # pragma: no cover


def settings_of(roots: Mapping[str, type[Any]]) -> list[Setting]:
    """Every leaf field of ``roots`` (``{"server": ServerSettings, …}``), in field order."""
    found: list[Setting] = []

    def walk(cls: type[Any], prefix: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(cls)
        defaults = cls()
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if dataclasses.is_dataclass(hint):
                walk(typing.cast(type[Any], hint), (*prefix, f.name))
                continue
            kind, optional = _kind(hint)
            default = getattr(defaults, f.name)
            found.append(Setting((*prefix, f.name), kind, optional, default, f.metadata))

    for name, cls in roots.items():
        walk(cls, (name,))
    return found


# -- the command line ------------------------------------------------------------------


def _click_type(setting: Setting) -> click.ParamType | None:  # type: ignore[type-arg]
    meta = setting.meta
    if setting.kind == "duration":
        return Duration(allow_none=setting.optional)
    if setting.kind == "int":
        if setting.optional:
            return click.INT
        return click.IntRange(meta.get("min"), meta.get("max"))
    if "choices" in meta:
        return click.Choice(list(meta["choices"]))
    if meta.get("path"):
        return click.Path(dir_okay=False)
    return None


def click_options(settings: Sequence[Setting]) -> list[click.Option]:
    """One click option per setting (``--x/--no-x`` for booleans)."""
    options: list[click.Option] = []
    for s in settings:
        common: dict[str, Any] = {
            "envvar": s.env,
            "show_envvar": True,
            "help": s.help,
            "metavar": s.meta.get("metavar"),
        }
        if s.kind == "bool":
            decl = f"{s.flag}/--no-{s.flag[2:]}"
            options.append(
                click.Option(
                    [decl, s.name],
                    default=s.default,
                    show_default=s.default is not None,
                    **common,
                )
            )
            continue
        default = s.default
        if s.kind == "strs":
            default = list(default)
        elif s.kind == "duration" and default is not None:
            default = format_duration(default)
        elif default is None and s.kind in ("int", "duration"):
            default = "0" if s.kind == "duration" else 0
        options.append(
            click.Option(
                [s.flag, s.name],
                type=_click_type(s),
                default=default,
                multiple=s.kind == "strs",
                show_default=(
                    False
                    if s.default is None or s.default == ()
                    else s.shown_default()
                    if s.kind == "duration"
                    else True
                ),
                **common,
            )
        )
    return options


def _final(setting: Setting, value: Any) -> Any:
    """A parsed option value as the dataclass field holds it."""
    if setting.kind == "int" and setting.optional and value is not None and value <= 0:
        return None
    if setting.kind == "strs":
        items = list(value or ())
        sep = setting.meta.get("split")
        if sep:
            items = [part for item in items for part in str(item).split(sep) if part]
        return tuple(items)
    return value


def build(roots: Mapping[str, type[Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    """The root instances from parsed values (``{setting.name: value}``).

    Settings missing from ``values`` keep their dataclass default.  Raises
    :class:`ConfigError` when the values contradict one another.
    """
    by_path = {s.path: s for s in settings_of(roots)}

    def make(cls: type[Any], prefix: tuple[str, ...]) -> Any:
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            path = (*prefix, f.name)
            if dataclasses.is_dataclass(hints[f.name]):
                kwargs[f.name] = make(typing.cast(type[Any], hints[f.name]), path)
            elif by_path[path].name in values:
                kwargs[f.name] = _final(by_path[path], values[by_path[path].name])
        try:
            return cls(**kwargs)
        except ValueError as exc:  # the settings contradict one another (__post_init__)
            raise ConfigError(f"inconsistent settings: {exc}") from None

    return {name: make(cls, (name,)) for name, cls in roots.items()}


# -- the config file ---------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    where = str(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_CONFIG_BYTES} bytes; not a config file")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None


def _check_value(setting: Setting, value: Any) -> Any:
    """The value of ``setting`` in a config file, in a form its click option accepts."""
    kind = setting.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            low, high = setting.meta.get("min"), setting.meta.get("max")
            if not setting.optional and (
                (low is not None and value < low) or (high is not None and value > high)
            ):
                raise ValueError(f"{value} is out of range [{low}, {high}]")
            return value
        raise ValueError("expected an integer")
    if kind == "duration":
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return "none" if setting.optional and value == 0 else float(value)
        if isinstance(value, str):
            try:
                Duration(allow_none=setting.optional).convert(value, None, None)
            except click.BadParameter as exc:
                raise ValueError(exc.message) from None
            return value
        raise ValueError('expected a duration: seconds, or a string like "500ms", "15s", "24h"')
    if kind == "strs":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ValueError("expected a list of strings")
    if isinstance(value, str):
        choices = setting.meta.get("choices")
        if choices and value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value
    raise ValueError("expected a string")


def _leaves(table: Mapping[str, Any], prefix: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    for key, value in table.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            yield from _leaves(value, path)
        else:
            yield ".".join(path), value


def load_config(path: Path, settings: Sequence[Setting]) -> dict[str, Any]:
    """Read and check a TOML config file; return ``{setting.name: value}``.

    Raises :class:`ConfigError` (one line naming the file and the key) for a
    file that can't be read or parsed, an unknown key, or a value of the wrong
    type.
    """
    document = _read_toml(path)
    by_key = {s.key: s for s in settings}
    tables = {".".join(s.path[:i]) for s in settings for i in range(1, len(s.path))}
    values: dict[str, Any] = {}
    for key, value in _leaves(document, ()):
        setting = by_key.get(key)
        if setting is None:
            what = "a table, not a value" if key in tables else "unknown key"
            raise ConfigError(f"{path}: {what} {key!r}; see `ssehub config --defaults`")
        try:
            values[setting.name] = _check_value(setting, value)
        except ValueError as exc:
            raise ConfigError(f"{path}: key {key!r}: {exc} (got {value!r})") from None
    return values


def _toml_value(setting: Setting) -> str:
    value = setting.default
    if setting.kind == "duration":
        return json.dumps(format_duration(value)) if value is not None else "0"
    if setting.kind == "int":
        return str(value if value is not None else 0)
    if setting.kind == "bool":
        return "true" if value else "false"
    if setting.kind == "strs":
        return json.dumps(list(value), ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def defaults_toml(settings: Sequence[Setting]) -> str:
    """A TOML document of every default, each with its help, flag and variable."""
    lines = [
        "# ssehub serve --config FILE: every setting with its default.",
        "# Precedence: command-line flag > SSEHUB_* environment variable > this file > default.",
        '# Durations are seconds or strings like "500ms", "15s", "24h"; 0 = unbounded.',
    ]
    table: tuple[str, ...] | None = None
    for s in settings:
        if s.path[:-1] != table:
            table = s.path[:-1]
            lines += ["", f"[{'.'.join(table)}]"]
        lines.append(f"# {s.help}  ({s.flag}, {s.env})")
        if s.default is None and s.kind in ("bool", "str"):
            example = "true" if s.kind == "bool" else '""'
            lines.append(f"# {s.path[-1]} = {example}  (unset by default)")
        else:
            lines.append(f"{s.path[-1]} = {_toml_value(s)}")
    return "\n".join(lines) + "\n"


def markdown_table(settings: Sequence[Setting], extra: Sequence[tuple[str, str, str, str]]) -> str:
    """The README's settings table: flag, variable, default, meaning."""
    rows = [(s.flag, s.env, s.shown_default(), s.help) for s in settings]
    rows += list(extra)
    lines = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for flag, env, default, text in rows:
        cell = text.replace("|", "\\|")
        lines.append(f"| `{flag}` | `{env}` | `{default}` | {cell} |")
    return "\n".join(lines) + "\n"
