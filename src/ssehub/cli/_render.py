"""How ``ssehub listen`` prints an event: one pretty line, or one JSON object per line.

Pretty lines are ``TYPE  ID  DATA``: the type in colour (the hub's reserved
``ssehub-reset`` stands out), the ID dimmed (``-`` when there is none), JSON
objects and arrays re-printed on one line with highlighting, other data as
sent, its extra lines indented under the first.  Control characters that could
drive a terminal (ESC, C1, DEL, bidi overrides, …) are shown escaped
(``\\x1b``) by :func:`~ssehub.cli._output.printable`, never written.  JSON
lines are ``{"event", "data", "id"}``, plus ``"retry"`` (integer milliseconds)
once the stream has set it, with those characters as ``\\u....`` escapes.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.text import Text

from ..hub import RESET_EVENT
from ..protocol import Event
from ._output import json_text, printable

__all__ = ["EventPrinter", "json_line"]

_TYPE_WIDTH = 10


def json_line(event: Event, retry: int | None) -> str:
    """One event as a compact JSON object on one line (no trailing newline)."""
    payload: dict[str, Any] = {"event": event.event, "data": event.data, "id": event.id}
    if retry is not None:
        payload["retry"] = retry
    return json_text(payload)


def _as_json(data: str) -> Any | None:
    """``data`` parsed, when it holds a JSON object or array; else ``None``."""
    if not data.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


class EventPrinter:
    """Prints events as pretty lines on a rich console (colour only where it has colour)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._json = JSONHighlighter()

    def line(self, event: Event) -> Text:
        """The pretty text for one event (one line, plus indented lines for multi-line data)."""
        reset = event.event == RESET_EVENT
        type_style = "bold yellow" if reset else "bold cyan"
        text = Text()
        text.append(printable(event.event).ljust(_TYPE_WIDTH), style=type_style)
        text.append(" ")
        text.append(printable(event.id) or "-", style="dim")
        text.append("  ")
        value = _as_json(event.data)
        if value is not None:
            text.append_text(self._json(printable(json.dumps(value, ensure_ascii=False))))
        else:
            indent = "\n" + " " * (_TYPE_WIDTH + 1)
            lines = [printable(line) for line in event.data.split("\n")]
            text.append(indent.join(lines), style="yellow" if reset else "")
        return text

    def print(self, event: Event) -> None:
        self.console.print(self.line(event))
