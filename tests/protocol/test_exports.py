"""The public surface of ssehub.protocol, and its promise to need only the stdlib."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import ssehub.protocol
from ssehub import errors

PUBLIC = {
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_RECONNECT_DELAY",
    "Event",
    "EventStreamParser",
    "Jitter",
    "ReconnectPolicy",
    "ReconnectState",
    "ServerSentEvent",
    "encode",
    "encode_comment",
}


def test_public_names_are_exactly_these() -> None:
    assert set(ssehub.protocol.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(ssehub.protocol, name) is not None


def test_public_names_report_the_public_module_never_a_private_one() -> None:
    for name in PUBLIC - {"DEFAULT_MAX_EVENT_SIZE", "DEFAULT_RECONNECT_DELAY"}:
        assert getattr(ssehub.protocol, name).__module__ == "ssehub.protocol", name


def test_protocol_imports_only_the_standard_library_and_errors() -> None:
    """Sans-I/O: no asyncio, no sockets, no third-party package."""
    package = Path(ssehub.protocol.__file__).parent
    forbidden = {"asyncio", "socket", "selectors", "threading", "time"}
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside ssehub
                    assert node.module in {None, "errors"} or node.level == 1, module
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names, (module.name, name)
                assert top not in forbidden, (module.name, name)


def test_protocol_errors_come_from_the_one_tree() -> None:
    assert issubclass(errors.EncodeError, errors.LocalProtocolError)
    assert issubclass(errors.EventTooLargeError, errors.RemoteProtocolError)
