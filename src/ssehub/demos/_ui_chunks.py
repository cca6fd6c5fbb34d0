"""A chat answer's events as AI SDK UI message chunks (``GET /chat/answers/{id}/stream``).

The answer topic's events (``_answers``) map onto the UI message stream
protocol (``ssehub.server.UIMessageStreamResponse``):

* ``connected`` → ``start`` (``messageId`` = the answer id), ``start-step``;
* ``thinking`` → one reasoning part: ``reasoning-start`` once, then one
  ``reasoning-delta`` per step (the step and a newline);
* ``content`` → one text part: ``reasoning-end`` if reasoning was open,
  ``text-start`` once, then a ``text-delta`` per token;
* ``done`` → the open parts' ends, ``finish-step``, ``finish``
  (``finishReason`` ``stop`` or ``length``); a stopped answer ends with
  ``abort`` instead;
* ``error`` (or the hub's reset event) → ``error`` (``errorText``).

Any other event (``stop`` requests) is not part of the message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from ..hub import RESET_EVENT
from ..protocol import Event

__all__ = ["ui_chunks"]


def _payload(event: Event) -> dict[str, Any]:
    try:
        value = json.loads(event.data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def ui_chunks(answer_id: str, events: AsyncIterable[Event]) -> AsyncIterator[dict[str, Any]]:
    """Translate an answer topic's events; ends after the answer's terminal event."""
    reasoning, text = f"reasoning-{answer_id}", f"text-{answer_id}"
    open_parts: list[tuple[str, str]] = []  # (end chunk type, part id), in opening order

    def close() -> list[dict[str, Any]]:
        ends = [{"type": kind, "id": part} for kind, part in open_parts]
        open_parts.clear()
        return ends

    async for event in events:
        data = _payload(event)
        if event.event == "connected":
            yield {"type": "start", "messageId": answer_id}
            yield {"type": "start-step"}
        elif event.event == "thinking":
            if ("reasoning-end", reasoning) not in open_parts:
                open_parts.append(("reasoning-end", reasoning))
                yield {"type": "reasoning-start", "id": reasoning}
            yield {"type": "reasoning-delta", "id": reasoning, "delta": f"{data.get('step', '')}\n"}
        elif event.event == "content":
            if ("text-end", text) not in open_parts:
                for end in close():
                    yield end
                open_parts.append(("text-end", text))
                yield {"type": "text-start", "id": text}
            yield {"type": "text-delta", "id": text, "delta": str(data.get("text", ""))}
        elif event.event == "done":
            for end in close():
                yield end
            if data.get("reason") == "stopped":
                yield {"type": "abort"}
                return
            yield {"type": "finish-step"}
            reason = "length" if data.get("reason") == "length" else "stop"
            yield {"type": "finish", "finishReason": reason}
            return
        elif event.event in ("error", RESET_EVENT):
            message = data.get("message") or "the answer's history is no longer available"
            yield {"type": "error", "errorText": str(message)}
            return
