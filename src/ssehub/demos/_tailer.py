"""Following one file like ``tail -F``, without following anything else.

:class:`FileTailer` is the sans-asyncio core of the log-tail demo: each
:meth:`FileTailer.poll` looks at the path and reads what was appended since
the last poll, returning :class:`TailItem` s.  Conventions, as ``tail -F``:

* It starts at the end of a file that exists at start-up, after its last
  ``tail_lines`` lines (like ``tail -n``; read back at most ``max_read``
  bytes), and at the beginning of a file that appears later (or replaces the
  old one).
* Rotation (the path now names another inode, or was removed): the rest of the
  old file is read through the still-open handle, then the new file from 0.
* Truncation (the size shrank below the read position): read again from 0.
* Lines end at LF; a CR before it is dropped.  A partial last line is held
  until its LF arrives (or the file is rotated or truncated).  Bytes are
  decoded as UTF-8 with U+FFFD replacement, after splitting, so a character is
  never cut; lines longer than ``max_line`` bytes are split at a character
  boundary.  At most ``max_read`` bytes are read per poll, so a huge append is
  spread over several polls instead of filling memory.

Safety (the path's directory may be writable by others, who can plant
anything at rotation time): the tailer opens only a **regular file** that is
an entry of the **same directory** (the directory is opened once and every
look-up is relative to it), owned by the **same user** as the first file it
opened, and never follows a symlink (``lstat``, then ``O_NOFOLLOW``; a FIFO
or device is refused before it is opened, and the opened file must be the
one just looked at).  Anything else is refused with one notice and one log
line, and tried again only when the path changes.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO, Literal

__all__ = ["FileTailer", "TailItem"]

logger = logging.getLogger("ssehub.demos")

_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC
)


@dataclass(frozen=True, slots=True)
class TailItem:
    """What a poll found: a ``line`` of the file, or a ``notice`` about the file."""

    kind: Literal["line", "notice"]
    text: str


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "not a regular file"


class FileTailer:
    """Follows one path like ``tail -F`` (see the module docstring); not thread-safe."""

    def __init__(
        self,
        path: str,
        *,
        max_line: int = 16 * 1024,
        max_read: int = 1 << 20,
        tail_lines: int = 0,
    ) -> None:
        self.path = os.path.abspath(path)
        self.max_line = max_line
        self.max_read = max_read
        self.tail_lines = tail_lines
        self._dir, self._name = os.path.split(self.path)
        self._dir_fd: int | None = None
        #: The owner of the first file opened: every later file must have it too.
        self.owner: int | None = None
        self._file: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        self._refused: tuple[int, int, int] | None = None
        self._pos = 0
        self._partial = b""
        self._started = False
        self._missing_told = False

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _lstat(self) -> os.stat_result | None:
        """The path's own entry in its directory (a symlink is not followed)."""
        if self._dir_fd is None:
            try:
                self._dir_fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return None
        try:
            return os.stat(self._name, dir_fd=self._dir_fd, follow_symlinks=False)
        except OSError:
            return None

    def poll(self) -> list[TailItem]:
        """Read what changed since the last poll."""
        items: list[TailItem] = []
        st = self._lstat()
        first = not self._started
        self._started = True
        if self._file is not None:
            if st is None or (st.st_dev, st.st_ino) != self._identity:
                items += self._drain()
                items += self._flush_partial()
                self._close_file()
                if st is None:
                    items.append(TailItem("notice", "文件已移走，等待新文件（file moved away）"))
                    self._missing_told = True
                    return items
                items.append(TailItem("notice", "文件已轮转，从头读取新文件（file rotated）"))
                return items + self._open(st, at_end=False)
            if st.st_size < self._pos:
                items += self._flush_partial()
                self._file.seek(0)
                self._pos = 0
                items.append(TailItem("notice", "文件被截断，从头读取（file truncated）"))
            return items + self._read()
        if st is None:
            self._refused = None
            if not self._missing_told:
                self._missing_told = True
                items.append(TailItem("notice", "文件不存在，等待它出现（file not found yet）"))
            return items
        if self._refused == (st.st_dev, st.st_ino, st.st_mode):
            return items  # refused already; tried again when the path changes
        if not first:
            items.append(TailItem("notice", "文件出现了，从头读取（file appeared）"))
        return items + self._open(st, at_end=first)

    def _refuse(self, st: os.stat_result, why: str) -> list[TailItem]:
        self._refused = (st.st_dev, st.st_ino, st.st_mode)
        self._missing_told = False
        logger.warning("log tail %s: refused to open it: %s", self.path, why)
        return [TailItem("notice", f"拒绝打开（refused: {why}）")]

    def _open(self, st: os.stat_result, *, at_end: bool) -> list[TailItem]:
        if not stat.S_ISREG(st.st_mode):
            return self._refuse(st, f"{_kind(st.st_mode)}, not a regular file")
        if self.owner is not None and st.st_uid != self.owner:
            return self._refuse(st, f"owned by uid {st.st_uid}, not {self.owner}")
        assert self._dir_fd is not None
        try:
            fd = os.open(self._name, _OPEN_FLAGS, dir_fd=self._dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return self._refuse(st, "symlink, not a regular file")
            return [TailItem("notice", f"无法打开文件（cannot open: {exc.strerror}）")]
        fst = os.fstat(fd)
        if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(fst.st_mode):
            os.close(fd)
            return self._refuse(fst, "the file changed while it was being opened")
        if self.owner is None:
            self.owner = fst.st_uid
        self._refused = None
        handle = os.fdopen(fd, "rb")
        self._file = handle
        self._identity = (fst.st_dev, fst.st_ino)
        self._missing_told = False
        self._partial = b""
        if at_end:
            return self._last_lines(fst.st_size)
        self._pos = 0
        return self._read()

    def _last_lines(self, size: int) -> list[TailItem]:
        """Position at the end, after reading back the last ``tail_lines`` lines."""
        assert self._file is not None
        self._pos = size
        if self.tail_lines <= 0 or size == 0:
            self._file.seek(size)
            return []
        start = max(0, size - self.max_read)
        self._file.seek(start)
        data = self._file.read(size - start)
        self._file.seek(size)
        *lines, self._partial = data.split(b"\n")
        if start > 0 and lines:
            lines = lines[1:]  # the first piece may be the end of a longer line
        items = [item for line in lines[-self.tail_lines :] for item in self._line(line)]
        return items[-self.tail_lines :]

    def _drain(self, max_reads: int = 64) -> list[TailItem]:
        """Everything left in the open file (at most ``max_reads`` reads)."""
        items: list[TailItem] = []
        for _ in range(max_reads):
            before = self._pos
            items += self._read()
            if self._pos == before:
                break
        return items

    def _read(self) -> list[TailItem]:
        assert self._file is not None
        data = self._file.read(self.max_read)
        if not data:
            return []
        self._pos += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        items = [item for line in lines for item in self._line(line)]
        while len(self._partial) > self.max_line:
            cut = _char_boundary(self._partial, self.max_line)
            items.append(TailItem("line", self._partial[:cut].decode("utf-8", "replace")))
            self._partial = self._partial[cut:]
        return items

    def _flush_partial(self) -> list[TailItem]:
        partial, self._partial = self._partial, b""
        return self._line(partial) if partial else []

    def _line(self, raw: bytes) -> list[TailItem]:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        items = []
        while len(raw) > self.max_line:
            cut = _char_boundary(raw, self.max_line)
            items.append(TailItem("line", raw[:cut].decode("utf-8", "replace")))
            raw = raw[cut:]
        items.append(TailItem("line", raw.decode("utf-8", "replace")))
        return items


def _char_boundary(data: bytes, limit: int) -> int:
    """The largest cut ``<= limit`` that does not split a UTF-8 sequence (``limit`` if none)."""
    cut = limit
    while cut > limit - 4 and cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > 0 and (data[cut] & 0xC0) != 0x80 else limit
