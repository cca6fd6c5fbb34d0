"""Raw TCP clients for hostile-client tests: they send exactly the bytes a test names.

Every read is bounded by a socket timeout; every loop by a count.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "connect", "read_answer", "request", "stalled_stream"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server sent back before it closed: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(
    port: int, *, timeout: float = 10.0, receive_buffer: int | None = None
) -> socket.socket:
    """A TCP connection to the hub on loopback."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def read_answer(sock: socket.socket, *, limit: int = 1 << 20) -> Answer:
    """Read one response head and its ``Content-Length`` body (or up to EOF)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head; got {data[:200]!r}")
        data += chunk
        assert len(data) < limit, "response head too large"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return Answer(status, headers, body)


def request(port: int, data: bytes, *, timeout: float = 10.0) -> Answer:
    """Send ``data`` on a fresh connection and read the answer."""
    with connect(port, timeout=timeout) as sock:
        sock.sendall(data)
        return read_answer(sock)


def stalled_stream(
    port: int, path: str = "/topics/t", *, opening: bytes = b"retry: 3000"
) -> socket.socket:
    """A stream that read its opening block and will read nothing more (tiny receive buffer).

    ``opening`` is what ends the opening block (a Durable Streams ``live=sse`` stream
    opens with ``event: control``); the answer must be a ``200``.
    """
    sock = connect(port, receive_buffer=4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    received = b""
    while opening not in received:
        chunk = sock.recv(4096)
        assert chunk, f"closed before the opening block: {received[:200]!r}"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    return sock
