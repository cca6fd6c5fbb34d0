"""Loopback ports: find a free one, wait until something listens on one."""

from __future__ import annotations

import socket
import subprocess

from tests.support.polling import poll_until

__all__ = ["free_port", "wait_for_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int, *, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until something accepts TCP connections on ``port``.

    With ``proc``, fail at once if that process exits before it listens.
    """

    def listening() -> bool:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"process exited with {proc.returncode} before listening on {port}"
            )
        return _accepts(port)

    poll_until(listening, f"something to listen on port {port}", timeout)
