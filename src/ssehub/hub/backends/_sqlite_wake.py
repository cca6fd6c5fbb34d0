"""Wake-ups between processes that share one SQLite file: one datagram socket each.

A wake-up carries no data — it only says "the file has new rows, read them".
The rows themselves (after this process's last seen ``seq``) are the source of
truth, so a lost, late or forged wake-up costs latency, never events: every
follower also reads on a timer (:mod:`._sqlite_feed`).

Conventions:

* Each process (each open backend) binds one Unix datagram socket in Linux's
  *abstract* namespace, ``\\0ssehub-wake/{token}`` (no file, no path-length
  limit, gone when the process dies), and then registers it with an empty file
  ``{token}`` in the directory ``{db}.wake/`` beside the database file.
  Binding first means a registered name that refuses a datagram belongs to a
  dead process: the sender removes its file.
* :meth:`WakeChannel.notify` sends one byte to every other registered peer,
  non-blocking; a full receive buffer means that peer is already woken.  The
  peer list is re-read only when the directory's mtime changes; only names of
  the registration's shape are used, at most :data:`_MAX_PEERS`.
* Received datagrams are drained at once (the kernel bounds the queue) and
  coalesced into one call of ``on_wake``.
* Off Linux (no abstract namespace) or when the directory can't be created,
  the channel is *inactive*: notify does nothing and followers rely on their
  timer alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import secrets
import socket
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["WakeChannel", "wake_directory"]

logger = logging.getLogger("ssehub.hub.sqlite")

_PREFIX = b"\0ssehub-wake/"
#: Most datagrams drained per readable callback (the rest wait for the next one).
_DRAIN = 256
#: Most peers woken (a directory with more entries is not ours alone).
_MAX_PEERS = 1024
#: What a registration's name looks like: ``{pid}-{12 hex digits}``.
_TOKEN = re.compile(r"[0-9]{1,10}-[0-9a-f]{12}")


def wake_directory(db_path: str) -> Path:
    """The directory beside ``db_path`` where its processes register."""
    return Path(f"{db_path}.wake")


class WakeChannel:
    """This process's wake-up socket and its view of the other processes' sockets."""

    def __init__(self, db_path: str) -> None:
        self.directory = wake_directory(db_path)
        self.token = f"{os.getpid()}-{secrets.token_hex(6)}"
        self._sock: socket.socket | None = None
        self._peers: list[tuple[str, bytes]] = []
        self._peers_mtime: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Datagrams sent and received (for tests and metrics).
        self.sent = 0
        self.received = 0

    @property
    def active(self) -> bool:
        return self._sock is not None

    def open(self, on_wake: Callable[[], None]) -> None:
        """Bind, register and start calling ``on_wake`` (coalesced) when woken."""
        if not sys.platform.startswith("linux"):
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(_PREFIX + self.token.encode())
            self.directory.mkdir(mode=0o700, exist_ok=True)
            (self.directory / self.token).touch()
        except OSError as exc:
            sock.close()
            logger.warning("no wake-ups between processes (%s); polling only", exc)
            return
        self._sock = sock
        loop = self._loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._readable, on_wake)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(OSError):
            (self.directory / self.token).unlink()

    def _readable(self, on_wake: Callable[[], None]) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(_DRAIN):
            try:
                sock.recv(16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            self.received += 1
        on_wake()

    def notify(self) -> None:
        """Wake every other registered process (best effort, never blocks)."""
        sock = self._sock
        if sock is None:
            return
        for token, address in self._current_peers():
            try:
                sock.sendto(b"w", address)
                self.sent += 1
            except (BlockingIOError, InterruptedError):
                pass  # its queue is full: it is awake already
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    self._forget(token)

    def _current_peers(self) -> list[tuple[str, bytes]]:
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except OSError:
            return []
        if mtime != self._peers_mtime:
            self._peers_mtime = mtime
            try:
                names = [entry.name for entry in os.scandir(self.directory)]
            except OSError:
                names = []
            self._peers = [
                (name, _PREFIX + name.encode())
                for name in names
                if name != self.token and _TOKEN.fullmatch(name)
            ][:_MAX_PEERS]
        return self._peers

    def _forget(self, token: str) -> None:
        """A registered peer that refuses datagrams is dead: drop its file."""
        logger.debug("removing the wake-up registration of a dead process: %s", token)
        with contextlib.suppress(OSError):
            (self.directory / token).unlink()
        self._peers = [peer for peer in self._peers if peer[0] != token]
