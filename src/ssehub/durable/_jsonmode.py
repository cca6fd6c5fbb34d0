"""JSON mode (``application/json`` streams): message boundaries, kept as sent.

An append's body is validated strictly (no ``NaN``/``Infinity``, bounded
nesting by the body size) and split into messages: a top-level array is
flattened one level, anything else is one message.  Each message is kept as
the exact text the client sent (whitespace around it trimmed), and a record
stores an append's messages joined by ``,`` — so a read is ``[`` + records
joined by ``,`` + ``]`` with no re-serialisation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

__all__ = ["JsonBodyError", "format_messages", "split_messages"]

_DECODER = json.JSONDecoder(parse_constant=lambda name: _reject(name))
_WHITESPACE = " \t\n\r"


class JsonBodyError(ValueError):
    """The body is not JSON, or is an empty array where one is not allowed."""


def _reject(name: str) -> object:
    raise JsonBodyError(f"{name} is not JSON")


def split_messages(body: bytes, *, allow_empty: bool) -> list[str]:
    """The messages of one append (see the module docstring)."""
    try:
        text = body.decode("utf-8")
        value = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JsonBodyError(f"the body is not valid JSON: {exc}") from None
    stripped = text.strip(_WHITESPACE)
    if not isinstance(value, list):
        return [stripped]
    if not value:
        if allow_empty:
            return []
        raise JsonBodyError("an empty JSON array appends nothing")
    messages: list[str] = []
    index = 1  # after the "["
    for _ in value:
        while stripped[index] in _WHITESPACE or stripped[index] == ",":
            index += 1
        _, end = _DECODER.raw_decode(stripped, index)
        messages.append(stripped[index:end])
        index = end
    return messages


def format_messages(records: Sequence[bytes]) -> bytes:
    """A JSON array of every message of ``records``."""
    return b"[" + b",".join(record for record in records if record) + b"]"
