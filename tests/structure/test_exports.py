"""Each public package's ``__all__`` is curated: sorted, resolvable, no private paths."""

from __future__ import annotations

import importlib
import inspect

import pytest


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    if name.isupper() or (name.replace("_", "").isupper() and not name.startswith("__")):
        return (0, name)
    return (1 if name[:1].isupper() else 2, name)


PUBLIC = [
    "ssehub",
    "ssehub.protocol",
    "ssehub.hub",
    "ssehub.server",
    "ssehub.client",
    "ssehub.demos",
    "ssehub.durable",
    "ssehub.mercure",
    "ssehub.errors",
    "ssehub.integrations.mcp",
]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_sorted_and_every_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key)
    assert len(set(exported)) == len(exported)
    for item in exported:
        assert hasattr(module, item), f"{name}.{item}"
        assert not item.startswith("_") or item == "__version__"


@pytest.mark.parametrize("name", PUBLIC)
def test_no_private_module_path_leaks(name: str) -> None:
    module = importlib.import_module(name)
    for item in module.__all__:
        value = getattr(module, item)
        if inspect.ismodule(value):
            assert not any(part.startswith("_") for part in value.__name__.split(".")), item
