"""The README's Python snippets, for the tests that run them (tests/docs).

Snippets are the fenced ``python`` blocks.  A block that uses ``@app.`` without
defining ``app`` continues the block before it.  :func:`claimed` finds the one
snippet holding a marker; :data:`RUNNER` runs a snippet file as a script with
top-level ``await`` allowed.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["README", "RUNNER", "claimed", "snippets"]

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)

#: Runs a snippet file as a script, allowing top-level ``await`` / ``async with``.
RUNNER = """
import ast, asyncio, inspect, sys
path = sys.argv[1]
code = compile(open(path).read(), path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__"})
if inspect.iscoroutine(result):
    asyncio.run(result)
"""


def snippets() -> list[str]:
    """The README's Python blocks, continuation blocks joined to the block they continue."""
    blocks: list[str] = []
    for block in FENCE.findall(README.read_text(encoding="utf-8")):
        continues = "@app." in block and not re.search(r"^app = ", block, re.MULTILINE)
        if continues and blocks:
            blocks[-1] += "\n" + block
        else:
            blocks.append(block)
    return blocks


def claimed(marker: str) -> str:
    """The one snippet containing ``marker``."""
    found = [s for s in snippets() if marker in s]
    assert len(found) == 1, f"{len(found)} README snippets contain {marker!r}"
    return found[0]
