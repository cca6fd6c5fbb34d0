"""What only the SQLite backend promises: durability across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssehub.errors import BackendUnavailableError
from ssehub.hub._types import Retention, StoredEvent
from ssehub.hub.backends.sqlite import SQLiteBackend


class Null:
    def on_event(self, event: StoredEvent) -> None:
        pass

    def on_gap(self) -> None:
        pass


async def test_history_epoch_and_head_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    first = SQLiteBackend(path)
    await first.start(Null())
    stored = [await first.append("t", f"e{i}") for i in range(3)]
    epoch = first.epoch
    await first.aclose()

    second = SQLiteBackend(path, retention=Retention())
    await second.start(Null())
    try:
        assert second.epoch == epoch
        assert await second.head() == stored[-1].seq
        assert (await second.read(["t"], after=stored[0].seq, limit=10)).events == stored[1:]
        assert (await second.append("t", "next")).seq == stored[-1].seq + 1
    finally:
        await second.aclose()


async def test_a_new_file_gets_a_new_epoch(tmp_path: Path) -> None:
    one, two = SQLiteBackend(tmp_path / "a.db"), SQLiteBackend(tmp_path / "b.db")
    await one.start(Null())
    await two.start(Null())
    try:
        assert one.epoch != two.epoch
    finally:
        await one.aclose()
        await two.aclose()


async def test_an_unopenable_path_is_a_clear_backend_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    backend = SQLiteBackend(tmp_path / "dir.db")
    with pytest.raises(BackendUnavailableError, match=r"cannot open SQLite store"):
        await backend.start(Null())
