"""``ssehub serve --certfile/--keyfile``: HTTPS, HTTP/2 by ALPN, and the hub's guarantees on it.

Each test runs a real ``ssehub serve`` over TLS and talks to it with a raw ``h2``
client (:mod:`tests.support.h2client`), so what is checked is what goes on the wire:
frames, resets, headers.  Issue 15.
"""

from __future__ import annotations

import signal
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.cli import assert_one_line_error, run_cli
from tests.support.h2client import H2Client, tls_client_context
from tests.support.polling import poll_until
from tests.support.processes import HubProcess, free_port, start_hub

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"}


@contextmanager
def _https_hub(tls_files: tuple[str, str], tmp_path: Path, *extra: str) -> Iterator[HubProcess]:
    cert, key = tls_files
    args = ["--store", "memory", "--no-demos", "--certfile", cert, "--keyfile", key, *extra]
    with start_hub(args, log_dir=tmp_path) as hub:
        yield hub


@pytest.fixture(scope="module")
def shared(
    tls_files: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    """One HTTPS hub for the tests that leave it running (each on its own topic)."""
    with _https_hub(tls_files, tmp_path_factory.mktemp("hub"), "--heartbeat", "0.2") as served:
        yield served


@pytest.fixture
def hub(tls_files: tuple[str, str], tmp_path: Path) -> Iterator[HubProcess]:
    with _https_hub(tls_files, tmp_path) as served:
        yield served


def _open_streams(hub: HubProcess) -> int:
    answer = httpx.get(f"{hub.url}/healthz", verify=False, timeout=5)
    return int(answer.json()["open_streams"])


def _publish(hub: HubProcess, topic: str, data: str) -> None:
    answer = httpx.post(f"{hub.url}/topics/{topic}", json={"data": data}, verify=False)
    assert answer.status_code == 201, answer.text


def test_alpn_picks_http2_and_an_older_client_gets_http11(shared: HubProcess) -> None:
    with H2Client(shared.port) as client:
        assert client.fetch("/healthz").status == 200
    raw = socket.create_connection(("127.0.0.1", shared.port), timeout=10)
    with tls_client_context(["http/1.1"]).wrap_socket(raw, server_hostname="localhost") as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")


def test_an_http2_stream_has_the_sse_headers_and_no_hop_by_hop_ones(shared: HubProcess) -> None:
    with H2Client(shared.port) as client:
        _, stream = client.subscribe("/topics/news")
        headers = dict(stream.headers)
        assert stream.status == 200
        assert headers["content-type"] == "text/event-stream"
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"
        assert HOP_BY_HOP.isdisjoint(headers)


def test_events_and_heartbeats_reach_an_http2_stream(shared: HubProcess) -> None:
    with H2Client(shared.port) as client:
        _, stream = client.subscribe("/topics/live")
        _publish(shared, "live", "hello over h2")
        client.pump_until(lambda: b"data: hello over h2\n" in stream.body, "the event")
        client.pump_until(lambda: b"\n:\n\n" in stream.body, "a heartbeat (every 0.2 s)")


def test_a_stream_the_client_resets_leaves_the_hub_within_a_second(shared: HubProcess) -> None:
    """A browser that drops an EventSource over HTTP/2 sends RST_STREAM and keeps the
    connection; the hub must drop the subscriber at once (emmett-framework/granian#917)."""
    with H2Client(shared.port) as client:
        kept, _ = client.subscribe("/topics/reset")
        dropped, _ = client.subscribe("/topics/reset")
        poll_until(lambda: _open_streams(shared) == 2, "two subscribers on the hub")
        client.reset(dropped)
        poll_until(lambda: _open_streams(shared) == 1, "the reset stream to leave the hub", 1.0)
        _publish(shared, "reset", "still here")
        client.pump_until(
            lambda: b"data: still here\n" in client.streams[kept].body,
            "the other stream of the connection to go on",
        )


def test_a_slow_http2_stream_is_reset_alone_and_its_neighbour_goes_on(
    tls_files: tuple[str, str], tmp_path: Path
) -> None:
    with (
        _https_hub(tls_files, tmp_path, "--max-queue", "4", "--write-timeout", "2") as hub,
        H2Client(hub.port) as client,
    ):
        slow, _ = client.subscribe("/topics/bulk")
        fast, _ = client.subscribe("/topics/bulk")
        client.stall(slow)
        padding = "x" * 4000
        with httpx.Client(base_url=hub.url, verify=False) as publisher:
            for seq in range(60):  # 240 KB: past the stream's window and the server's buffer
                publisher.post("/topics/bulk", json={"data": f"{seq} {padding}"})
                client.pump_until(  # the other stream reads on, keeping up
                    lambda n=seq + 1: client.streams[fast].body.count(b"data: ") >= n,
                    "the reading stream to keep up",
                )
        client.pump_until(
            lambda: client.streams[slow].reset_code is not None, "the slow stream's reset"
        )
        assert client.streams[slow].reset_code == 8  # CANCEL
        client.pump_until(
            lambda: client.streams[fast].body.count(b"data: ") == 60,
            "all 60 events on the reading stream",
        )
        _publish(hub, "bulk", "after")
        client.pump_until(lambda: b"data: after\n" in client.streams[fast].body, "one more")
        assert not client.terminated
        poll_until(lambda: _open_streams(hub) == 1, "the slow subscriber gone from the hub")


def test_sigterm_drains_http2_streams_with_a_retry_and_ends_them(hub: HubProcess) -> None:
    with H2Client(hub.port) as client:
        _, stream = client.subscribe("/topics/news")
        opened = len(stream.body)
        hub.proc.send_signal(signal.SIGTERM)
        client.pump_until(lambda: stream.ended, "the stream to end cleanly (END_STREAM)")
        assert b"retry:" in stream.body[opened:]
        assert stream.reset_code is None
        # A new request now is refused (a come-back-later answer, a reset, or GOAWAY), never held.
        if not client.terminated:
            late = client.streams[client.get("/topics/news")]
            client.pump_until(
                lambda: late.ended or late.reset_code is not None or client.terminated,
                "the draining hub's refusal",
            )
    assert hub.proc.wait(timeout=15) == 0
    assert "Traceback" not in hub.log()


def test_over_the_connection_cap_an_http2_request_gets_503_without_hop_by_hop_headers(
    tls_files: tuple[str, str], tmp_path: Path
) -> None:
    with (
        _https_hub(tls_files, tmp_path, "--max-connections", "1") as hub,
        H2Client(hub.port) as first,
    ):
        first.subscribe("/topics/news")  # holds the one connection the cap allows
        with H2Client(hub.port) as second:
            refused = second.fetch("/healthz")
            assert refused.status == 503
            assert b"too_many_connections" in refused.body
            assert HOP_BY_HOP.isdisjoint(dict(refused.headers))


def test_too_many_header_fields_on_http2_get_431(
    tls_files: tuple[str, str], tmp_path: Path
) -> None:
    with (
        _https_hub(tls_files, tmp_path, "--max-header-count", "8") as hub,
        H2Client(hub.port) as client,
    ):
        many = [(f"x-filler-{n}", "1") for n in range(20)]
        refused = client.fetch("/healthz", many)
        assert refused.status == 431
        assert b"too_many_headers" in refused.body


def test_dev_cert_serves_https_and_logs_where_the_certificate_is(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    with start_hub(["--store", "memory", "--no-demos", "--dev-cert"], env=env) as hub:
        assert hub.url.startswith("https://")
        cert = tmp_path / "cache" / "ssehub" / "dev-cert.pem"
        assert cert.is_file()
        poll_until(lambda: str(cert) in hub.log(), "the certificate's path in the log")
        trusted = ssl.create_default_context(cafile=str(cert))  # it is valid for 127.0.0.1
        answer = httpx.get(f"{hub.url}/healthz", verify=trusted)
        assert answer.status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--certfile", "/no/such.pem", "--keyfile", "/no/such.key"], "no such file"),
        (["--certfile", "{cert}"], "needs both --certfile and --keyfile"),
        (["--certfile", "{key}", "--keyfile", "{key}"], "not a PEM certificate"),
        (["--certfile", "{cert}", "--keyfile", "{other}"], "not the key of --certfile"),
        (["--dev-cert", "--certfile", "{cert}", "--keyfile", "{key}"], "drop --certfile"),
        (["--dev-cert", "--workers", "2", "--store", "sqlite:{tmp}/h.db"], "plain HTTP only"),
    ],
)
def test_unusable_certificates_are_one_line_and_exit_2(
    tls_files: tuple[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    from ssehub.server import dev_certificate

    (tmp_path / "other").mkdir()
    other = dev_certificate(tmp_path / "other")[1] if "{other}" in args else ""
    cert, key = tls_files
    filled = [a.format(cert=cert, key=key, other=other, tmp=tmp_path) for a in args]
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = run_cli("serve", "--port", str(free_port()), *filled, env=env, timeout=30)
    line = assert_one_line_error(result, 2)
    assert message in line
