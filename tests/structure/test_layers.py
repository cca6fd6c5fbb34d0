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


#: What each package may import of ssehub (besides itself).
ALLOWED = {
    "ssehub.protocol": {"ssehub.errors"},
    "ssehub.hub": {"ssehub.protocol", "ssehub.errors"},
    "ssehub.server": {"ssehub", "ssehub.protocol", "ssehub.errors", "ssehub.hub"},
    "ssehub.client": {"ssehub.protocol", "ssehub.errors"},
    "ssehub.demos": {"ssehub.protocol", "ssehub.errors", "ssehub.hub", "ssehub.server"},
    "ssehub.durable": {"ssehub.protocol", "ssehub.errors", "ssehub.hub", "ssehub.server"},
    "ssehub.integrations": {"ssehub.protocol", "ssehub.errors", "ssehub.hub", "ssehub.server"},
    "ssehub.mercure": {"ssehub.protocol", "ssehub.errors", "ssehub.hub", "ssehub.server"},
}


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _imports(name: str, path: Path, tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """Every ssehub module that ``name`` imports, resolved to an absolute name."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ssehub"):
                    yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("ssehub"):
                if target == "ssehub" and node.level:
                    for alias in node.names:  # ``from .. import x``: module x, or metadata
                        dunder = alias.name.startswith("__")
                        yield ("ssehub" if dunder else f"ssehub.{alias.name}"), node
                else:
                    yield target, node


def test_imports_flow_one_way() -> None:
    offenders = []
    for name, path, tree in _modules():
        package = _package(name)
        if package not in ALLOWED:
            continue
        for target, node in _imports(name, path, tree):
            other = _package(target)
            if other != package and other not in ALLOWED[package] and target != "ssehub":
                offenders.append(f"{_where(path, node)} ({package} imports {target})")
            if target == "ssehub" and "ssehub" not in ALLOWED[package]:
                offenders.append(f"{_where(path, node)} ({package} imports ssehub)")
    assert offenders == []


def test_the_server_never_imports_demos_or_cli() -> None:
    offenders = [
        _where(path, node)
        for name, path, tree in _modules()
        if _package(name) == "ssehub.server"
        for target, node in _imports(name, path, tree)
        if _package(target) in ("ssehub.demos", "ssehub.mercure", "ssehub.cli")
    ]
    assert offenders == []
