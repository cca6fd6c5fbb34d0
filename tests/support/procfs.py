"""Bounds read from ``/proc``: a process's memory and descriptors, TCP socket states.

Hostile-client tests assert what the kernel reports, never how long something took.
Waits use :func:`tests.support.polling.poll_until`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

__all__ = [
    "TcpSocket",
    "fd_count",
    "rss_bytes",
    "socket_count",
    "sockets_left",
    "tcp_sockets",
]

#: /proc/net/tcp state codes.
TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (``VmRSS``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def fd_count(pid: int) -> int:
    """Open file descriptors of process ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def socket_count(pid: int) -> int:
    """Open sockets of process ``pid``."""
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            continue  # closed while we looked
    return count


@dataclass(frozen=True, slots=True)
class TcpSocket:
    """One row of ``/proc/net/tcp``: its local port, state and queued bytes."""

    local_port: int
    remote_port: int
    state: str
    send_queue: int
    receive_queue: int


def tcp_sockets(local_port: int) -> list[TcpSocket]:
    """The IPv4/IPv6 TCP sockets bound to ``local_port`` (the server's side of its connections)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
                    if int(local.rsplit(":", 1)[1], 16) != local_port:
                        continue
                    tx, rx = queues.split(":")
                    found.append(
                        TcpSocket(
                            local_port=local_port,
                            remote_port=int(remote.rsplit(":", 1)[1], 16),
                            state=TCP_STATES.get(state, state),
                            send_queue=int(tx, 16),
                            receive_queue=int(rx, 16),
                        )
                    )
        except FileNotFoundError:
            continue
    return found


def sockets_left(local_port: int, clients: list[socket.socket]) -> list[TcpSocket]:
    """The server's sockets on ``local_port`` still connected to ``clients`` (not TIME_WAIT)."""
    ports = {sock.getsockname()[1] for sock in clients}
    return [s for s in tcp_sockets(local_port) if s.remote_port in ports and s.state != "TIME_WAIT"]
