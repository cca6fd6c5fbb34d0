"""Slowloris and idle connections cannot hold the hub's sockets (issue 9, finding 4)."""

from __future__ import annotations

import selectors
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.polling import poll_until
from tests.support.processes import HubProcess, start_hub
from tests.support.procfs import socket_count
from tests.support.raw_http import connect, read_answer

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + b"s" * 40 + b"\r\n\r\n"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    args = ["--store", "memory", "--no-ticker", "--header-timeout", "1", "--idle-timeout", "1"]
    with start_hub(args, log_dir=tmp_path) as proc:
        yield proc


def test_slowloris_connection_gets_408_before_its_headers_are_complete(hub: HubProcess) -> None:
    """Fifty clients that send one byte every 0.2 s are answered 408 and closed.

    Each would need 16 s to finish its request; the hub closes them after its
    1 s header timeout, so none ever gets to send the whole request.
    """
    base = socket_count(hub.proc.pid)
    clients = [connect(hub.port) for _ in range(50)]
    sent = dict.fromkeys(clients, 0)
    closed: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for sock in clients:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        for _ in range(len(REQUEST)):  # bounded: at most one pass over the request
            for sock in clients:
                if sock in closed:
                    continue
                try:
                    sock.send(REQUEST[sent[sock] : sent[sock] + 1])
                    sent[sock] += 1
                except OSError:
                    closed[sock] = b""
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                selector.unregister(sock)
                sock.setblocking(True)
                closed[sock] = sock.recv(65536)
            if len(closed) == len(clients):
                break
    assert len(closed) == len(clients), "some slowloris connections were never closed"
    assert all(sent[sock] < len(REQUEST) for sock in clients)
    answers = [raw for raw in closed.values() if raw]
    assert answers, "no connection was answered"
    assert all(raw.startswith(b"HTTP/1.1 408 ") for raw in answers)
    assert b'"error": "request_timeout"' in answers[0]
    for sock in clients:
        sock.close()
    poll_until(lambda: socket_count(hub.proc.pid) <= base, what="hub sockets back to base")
    assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200


def test_a_connection_idle_before_its_first_request_is_closed(hub: HubProcess) -> None:
    base = socket_count(hub.proc.pid)
    clients = [connect(hub.port) for _ in range(100)]
    for sock in clients:  # each read is bounded by the 10 s socket timeout
        assert sock.recv(1) == b"", "the hub answered a connection that sent nothing"
        sock.close()
    poll_until(lambda: socket_count(hub.proc.pid) <= base, what="hub sockets back to base")


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(hub: HubProcess) -> None:
    """``--idle-timeout 1``: closed well within the client's 4 s read timeout.

    (uvicorn's own keep-alive default, 5 s, would not be.)
    """
    with connect(hub.port, timeout=4) as sock:
        sock.sendall(REQUEST)
        assert read_answer(sock).status == 200
        assert sock.recv(1) == b""
