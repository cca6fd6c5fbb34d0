"""Click parameter types shared by the commands."""

from __future__ import annotations

import re

import click

__all__ = ["DURATION", "Duration", "format_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A duration: ``30`` or ``30s``, ``500ms``, ``15m``, ``24h``, ``7d``.

    Converts to float seconds; ``0``/``none`` convert to ``None`` (unbounded)
    when ``allow_none``.
    """

    name = "duration"

    def __init__(self, allow_none: bool = False) -> None:
        self.allow_none = allow_none

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float | None:
        if value is None or isinstance(value, float | int):
            return None if value is None else float(value)
        text = str(value).strip().lower()
        if self.allow_none and text in {"none", "off", "0"}:
            return None
        match = _DURATION.fullmatch(text)
        if match is None:
            self.fail(
                f"{value!r} is not a duration (examples: 15, 15s, 500ms, 10m, 24h, 7d)", param, ctx
            )
        return float(match.group(1)) * _UNITS[match.group(2) or "s"]


DURATION = Duration()


def format_duration(seconds: float) -> str:
    """``seconds`` as :class:`Duration` reads it back: ``10ms``, ``15s``, ``24h``, ``1.5s``."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNITS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    millis = seconds * 1000
    if millis == int(millis):
        return f"{int(millis)}ms"
    return f"{seconds:g}s"
