"""The architecture is visible and enforced: layers, and what reaches what.

Read from the source with :mod:`ast` (nothing is imported), so a violation is
named with its file and line.  Issue 10.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ssehub

SRC = Path(ssehub.__file__).parent


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    """Every module of ssehub as (dotted package path, file, tree)."""
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC.parent).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        yield ".".join(parts), path, ast.parse(path.read_text("utf-8"), str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(SRC.parent)}:{getattr(node, 'lineno', '?')}"


def test_nothing_outside_the_hub_reaches_hub_backend() -> None:
    offenders = [
        _where(path, node)
        for name, path, tree in _modules()
        if not (name == "ssehub.hub" or name.startswith("ssehub.hub."))
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "backend"
    ]
    assert offenders == []
