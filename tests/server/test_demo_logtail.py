"""The log-tail demo's tailer, driven poll by poll (no sleeps, no threads)."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssehub.demos import DemoSettings, DemosPlugin
from ssehub.demos._logtail import (
    FileTailer,
    LogTail,
    TailItem,
    display_names,
    guess_level,
)
from ssehub.hub import Hub, open_backend
from ssehub.server import ServerSettings, create_app


def _lines(items: list[TailItem]) -> list[str]:
    return [i.text for i in items if i.kind == "line"]


def _notices(items: list[TailItem]) -> list[str]:
    return [i.text for i in items if i.kind == "notice"]


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def test_starts_at_the_end_of_an_existing_file(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"old 1\nold 2\n")
    tailer = FileTailer(str(log))
    assert tailer.poll() == []
    _append(log, "新的一行\nsecond\n".encode())
    assert _lines(tailer.poll()) == ["新的一行", "second"]
    assert tailer.poll() == []


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tailer = FileTailer(str(log))
    tailer.poll()
    _append(log, b"hel")
    assert tailer.poll() == []
    _append(log, b"lo\r\nwor")
    assert _lines(tailer.poll()) == ["hello"]
    _append(log, b"ld\n")
    assert _lines(tailer.poll()) == ["world"]


def test_a_character_split_across_appends_is_decoded_whole(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tailer = FileTailer(str(log))
    tailer.poll()
    data = "错误\n".encode()
    _append(log, data[:2])
    assert tailer.poll() == []
    _append(log, data[2:])
    assert _lines(tailer.poll()) == ["错误"]


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tailer = FileTailer(str(log))
    tailer.poll()
    _append(log, b"bad \xff byte\n")
    assert _lines(tailer.poll()) == ["bad \ufffd byte"]


def test_truncation_reads_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntwo\n")
    tailer = FileTailer(str(log))
    tailer.poll()
    _append(log, b"three\n")
    assert _lines(tailer.poll()) == ["three"]
    log.write_bytes(b"fresh\n")  # truncated, then a shorter content
    items = tailer.poll()
    assert any("truncated" in n for n in _notices(items))
    assert _lines(items) == ["fresh"]


def test_rotation_finishes_the_old_file_then_follows_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tailer = FileTailer(str(log))
    tailer.poll()
    _append(log, b"last words of the old file\nunfinished")
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes("新文件第一行\n".encode())
    items = tailer.poll()
    assert _lines(items) == ["last words of the old file", "unfinished", "新文件第一行"]
    assert [i.kind for i in items] == ["line", "line", "notice", "line"]
    assert "rotated" in items[2].text
    _append(log, b"more\n")
    assert _lines(tailer.poll()) == ["more"]


def test_a_missing_file_is_waited_for_and_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    tailer = FileTailer(str(log))
    first = tailer.poll()
    assert len(_notices(first)) == 1
    assert tailer.poll() == []  # told once
    log.write_bytes(b"born\n")
    items = tailer.poll()
    assert _lines(items) == ["born"]
    assert any("appeared" in n for n in _notices(items))


def test_a_removed_file_is_reported_and_its_successor_followed(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tailer = FileTailer(str(log))
    tailer.poll()
    log.unlink()
    assert any("moved away" in n for n in _notices(tailer.poll()))
    assert tailer.poll() == []
    log.write_bytes(b"back\n")
    assert _lines(tailer.poll()) == ["back"]
    tailer.close()


def test_long_lines_are_split_on_character_boundaries(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tailer = FileTailer(str(log), max_line=10)
    tailer.poll()
    line = "汉字" * 5  # 30 bytes
    _append(log, (line + "\n").encode())
    pieces = _lines(tailer.poll())
    assert "".join(pieces) == line
    assert all(len(p.encode()) <= 10 for p in pieces)
    assert "\ufffd" not in "".join(pieces)


def test_a_huge_append_is_read_over_several_polls(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    tailer = FileTailer(str(log), max_read=100)
    tailer.poll()
    _append(log, b"".join(b"line %03d\n" % i for i in range(100)))  # 900 bytes
    seen: list[str] = []
    for _ in range(20):
        items = tailer.poll()
        assert sum(len(t.encode()) + 1 for t in _lines(items)) <= 110
        seen += _lines(items)
    assert seen == [f"line {i:03d}" for i in range(100)]


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("2024-01-01 ERROR db: connection refused", "error"),
        ("[WARN] disk 90% full", "warning"),
        ("INFO server started; no error so far", "info"),
        ("level=debug msg=tick", "debug"),
        ("FATAL out of memory", "critical"),
        ("Traceback (most recent call last):", "error"),
        ("2024-01-01 错误：数据库连接失败", "error"),
        ("警告：磁盘空间不足", "warning"),
        ("just a line", "plain"),
        ("terrorism is not a level", "plain"),
    ],
)
def test_levels_are_guessed_from_the_first_level_word(line: str, level: str) -> None:
    assert guess_level(line) == level


def test_display_names_are_base_names_made_unique() -> None:
    names = display_names(("/var/log/app.log", "/srv/x/app.log", "/tmp/日志.txt"))
    assert names == ["app.log", "app.log (2)", "日志.txt"]


async def test_poll_all_publishes_lines_and_notices_to_each_files_topic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"")
    hub = Hub(open_backend("memory"))
    await hub.start(background=False)
    try:
        tail = LogTail(hub, (str(a), str(b)), wall_clock=lambda: 1700000000.0)
        assert await tail.poll_all() == 1  # b.log is missing: one notice
        _append(a, "ERROR 出错了\n".encode())
        b.write_bytes(b"hello\n")
        assert await tail.poll_all() == 3  # a's line, b appeared, b's line
        events_a = (await hub.backend.read(["logs/0"], 0, 100)).events
        events_b = (await hub.backend.read(["logs/1"], 0, 100)).events
    finally:
        await hub.aclose()
    assert [(e.event, json.loads(e.data)) for e in events_a] == [
        (
            "log",
            {
                "file": 0,
                "name": "a.log",
                "time": 1700000000.0,
                "line": "ERROR 出错了",
                "level": "error",
            },
        )
    ]
    assert [e.event for e in events_b] == ["notice", "notice", "log"]
    assert tail.recent.since(hub) is not None


async def test_files_listing_shows_names_only_and_no_request_names_a_path(tmp_path: Path) -> None:
    secret = tmp_path / "secret-dir" / "app.log"
    secret.parent.mkdir()
    secret.write_text("x\n")
    demos = DemosPlugin(DemoSettings(ticker=False, tail_files=(str(secret),)))
    app = create_app(ServerSettings(store="memory"), plugins=[demos])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        listing = await client.get("/logs/files", params={"path": "/etc/passwd"})
        page = await client.get("/logs", params={"file": "/etc/passwd"})
    assert listing.json()["files"] == [{"index": 0, "name": "app.log", "topic": "logs/0"}]
    assert "secret-dir" not in listing.text
    assert "secret-dir" not in page.text
    assert "root:" not in page.text


# -- nothing but a regular file of the same directory and owner (issue 9, finding 8) --

SECRET = "root:only-for-the-owner"
_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown)")


def _rotated(tmp_path: Path) -> tuple[FileTailer, Path]:
    """A tailer on app.log that has just been rotated away (app.log is now missing)."""
    log = tmp_path / "app.log"
    log.write_bytes(b"before\n")
    tailer = FileTailer(str(log))
    tailer.poll()
    os.rename(log, tmp_path / "app.log.1")
    return tailer, log


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "private" / "shadow"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    return secret


def test_a_symlink_planted_at_rotation_is_not_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tailer, log = _rotated(tmp_path)
    log.symlink_to(_secret(tmp_path))
    items = tailer.poll()
    assert not [i for i in items if SECRET in i.text]
    assert any("refused" in text and "symlink" in text for text in _notices(items))
    assert "refused" in caplog.text
    assert str(log) in caplog.text
    # told once, not at every poll; nothing read later either
    assert tailer.poll() == []
    # a real file in its place is followed again
    log.unlink()
    log.write_bytes("新文件\n".encode())
    assert _lines(tailer.poll()) == ["新文件"]


def test_a_symlink_given_at_start_is_not_followed(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.symlink_to(_secret(tmp_path))
    tailer = FileTailer(str(log), tail_lines=10)
    items = tailer.poll()
    assert _lines(items) == []
    assert any("symlink" in text for text in _notices(items))


def _poll_bounded(tailer: FileTailer, log: Path) -> list[TailItem]:
    """``tailer.poll()``, failing (not hanging) if it blocks on what was planted."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(tailer.poll)
    try:
        return future.result(timeout=10)
    except TimeoutError:
        if log.is_fifo():  # let the blocked open() return, so the test ends
            os.close(os.open(log, os.O_WRONLY | os.O_NONBLOCK))
        raise AssertionError("poll blocked on the planted file") from None
    finally:
        pool.shutdown(wait=True)


def _plant_fifo(path: Path) -> None:
    os.mkfifo(path)


def _plant_directory(path: Path) -> None:
    path.mkdir()
    (path / "inside").write_text(SECRET)


def _plant_device(path: Path) -> None:
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero


@pytest.mark.parametrize(
    ("plant", "kind"),
    [
        (_plant_fifo, "FIFO"),
        (_plant_directory, "directory"),
        pytest.param(_plant_device, "device", marks=_ROOT),
    ],
)
def test_a_fifo_device_or_directory_planted_at_rotation_is_refused(
    tmp_path: Path, plant: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused before it is opened: a FIFO would block the poll, a device never ends."""
    tailer, log = _rotated(tmp_path)
    plant(log)
    items = _poll_bounded(tailer, log)
    assert _lines(items) == []
    assert any(kind in text for text in _notices(items))
    assert f"{kind}, not a regular file" in caplog.text
    assert tailer.poll() == []


@_ROOT
def test_a_file_of_another_owner_planted_at_rotation_is_refused(tmp_path: Path) -> None:
    """A hard link to someone else's file is a regular file of the same directory."""
    tailer, log = _rotated(tmp_path)
    log.write_text(SECRET + "\n")
    os.chown(log, 12345, 12345)
    items = tailer.poll()
    assert _lines(items) == []
    assert any("owned by uid 12345" in text for text in _notices(items))


async def test_a_planted_symlink_publishes_nothing_of_its_target(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    hub = Hub(open_backend("memory"))
    await hub.start(background=False)
    try:
        tail = LogTail(hub, (str(log),), tail_lines=10)
        await tail.poll_all()
        os.rename(log, tmp_path / "app.log.1")
        log.symlink_to(_secret(tmp_path))
        await tail.poll_all()
        await tail.poll_all()
        events = (await hub.read(["logs/0"], 0, 100)).events
    finally:
        await hub.aclose()
    assert [e.event for e in events] == ["notice", "notice"]  # rotated, refused
    assert not [e for e in events if SECRET in e.data]
    assert "symlink" in json.loads(events[-1].data)["message"]
    assert "refused" in caplog.text


# -- --tail-lines: the last N lines at start, like tail -n (issue 10) --------------


def test_the_last_n_lines_of_an_existing_file_are_read_at_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes("".join(f"第 {i} 行\n" for i in range(100)).encode() + b"partial")
    tailer = FileTailer(str(log), tail_lines=3)
    assert _lines(tailer.poll()) == ["第 97 行", "第 98 行", "第 99 行"]
    _append(log, b" line\nnext\n")
    assert _lines(tailer.poll()) == ["partial line", "next"]


def test_tail_lines_reads_back_a_bounded_number_of_bytes(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    long = b"x" * 5000
    log.write_bytes(b"first\n" + (long + b"\n") * 10 + b"short\n")
    tailer = FileTailer(str(log), tail_lines=10, max_read=12_000, max_line=100_000)
    lines = _lines(tailer.poll())
    # 12,000 bytes back hold two whole long lines and the short one; nothing older
    assert lines == ["x" * 5000, "x" * 5000, "short"]


def test_tail_lines_of_a_short_or_empty_file(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"only\n")
    assert _lines(FileTailer(str(log), tail_lines=10).poll()) == ["only"]
    log.write_bytes(b"")
    assert FileTailer(str(log), tail_lines=10).poll() == []
    log.write_bytes(b"a\nb\n")
    assert FileTailer(str(log), tail_lines=0).poll() == []
