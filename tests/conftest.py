"""Fixtures shared by every suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import HubProcess, start_hub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A real ``ssehub serve`` subprocess: free port, in-memory store, 1 s heartbeats, no ticker."""
    args = ["--store", "memory", "--heartbeat", "1", "--no-ticker"]
    with start_hub(args, log_dir=tmp_path) as proc:
        yield proc
