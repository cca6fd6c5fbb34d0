"""Click parameter types shared by the commands."""

from __future__ import annotations

import re

import click

__all__ = ["DURATION", "Duration"]

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
