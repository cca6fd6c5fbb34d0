"""Tests share helpers through ``tests/support`` only (issue 10: "one test kit").

A test module that imports another test module couples them: moving or renaming
one breaks the other, and helpers get copied instead of shared.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

#: Modules that other tests may import: the kit, and apps served by tests.
SHARED = ("tests.support", "tests.server.apps")


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                found.append("." * node.level + (node.module or ""))
            elif node.module:
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_test_modules_import_helpers_only_from_the_kit() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if "support" in path.relative_to(TESTS).parts:
            continue
        for name in _imports(path):
            relative = name.startswith(".")
            foreign = name.startswith("tests.") and not name.startswith(SHARED)
            if relative or foreign:
                offenders.append(f"{path.relative_to(TESTS.parent)}: {name}")
    assert offenders == []
