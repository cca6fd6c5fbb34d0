"""A raw HTTP/2 client over a TLS socket (the ``h2`` package), for the HTTPS tests.

Synchronous and explicit: :meth:`H2Client.get` opens a stream and returns its id;
:meth:`H2Client.pump` reads what arrived within ``timeout`` seconds and files it per
stream (:class:`H2Stream`: status, headers, body, whether the server reset or ended
it); :meth:`H2Client.reset` sends ``RST_STREAM``.  Received data is acknowledged
(flow control) unless the stream was :meth:`H2Client.stall`-ed, which is how a test
plays a subscriber that stopped reading one stream while the others go on.
Certificates are not verified (the hubs under test use throwaway ones).  Requests
carry ``:authority 127.0.0.1`` (the house rule for raw clients).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

from tests.support.polling import poll_until

__all__ = ["H2Client", "H2Stream", "tls_client_context"]


def tls_client_context(alpn: Sequence[str] = ("h2",)) -> ssl.SSLContext:
    """A client context offering ``alpn`` and trusting any certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(list(alpn))
    return context


@dataclass
class H2Stream:
    """What one stream received."""

    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset_code: int | None = None


class H2Client:
    """One HTTP/2 connection to ``127.0.0.1:port``."""

    def __init__(self, port: int, *, window: int = 65_535) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = tls_client_context().wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
        )
        self.conn.initiate_connection()
        # A large connection window: a stalled stream must not stall the others.
        self.conn.increment_flow_control_window(1 << 24)
        self.streams: dict[int, H2Stream] = {}
        self.stalled: set[int] = set()
        self.terminated = False
        self.port = port
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def get(
        self,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        *,
        accept: str = "text/event-stream",
    ) -> int:
        """Open ``GET path`` with ``accept`` and ``headers``; returns the stream id."""
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            stream_id,
            [
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "127.0.0.1"),
                (":path", path),
                ("accept", accept),
                *headers,
            ],
            end_stream=True,
        )
        self.streams[stream_id] = H2Stream()
        self._flush()
        return stream_id

    def fetch(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> H2Stream:
        """``GET path`` (``Accept: application/json``), pumped until the answer ended."""
        stream = self.streams[self.get(path, headers, accept="application/json")]
        self.pump_until(lambda: stream.ended or stream.reset_code is not None, f"GET {path}")
        return stream

    def subscribe(self, path: str) -> tuple[int, H2Stream]:
        """Open an event stream and pump until its opening write (``retry:``) arrived."""
        stream_id = self.get(path)
        stream = self.streams[stream_id]
        self.pump_until(lambda: b"retry:" in stream.body, f"the opening write of {path}")
        return stream_id, stream

    def reset(self, stream_id: int) -> None:
        """Send ``RST_STREAM CANCEL``, as a browser does when a page drops an EventSource."""
        self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self._flush()

    def stall(self, stream_id: int) -> None:
        """Stop acknowledging ``stream_id``'s data: its window runs out, as for a stuck reader."""
        self.stalled.add(stream_id)

    def pump(self, timeout: float = 0.05) -> None:
        """Read and file whatever arrives within ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65_536)
        except (TimeoutError, ssl.SSLWantReadError):
            return
        if not data:
            self.terminated = True
            return
        for event in self.conn.receive_data(data):
            self._file(event)
        self._flush()

    def _file(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self.streams[event.stream_id]
            stream.headers = [(str(k), str(v)) for k, v in event.headers or []]
            stream.status = int(dict(stream.headers)[":status"])
        elif isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None
            self.streams[event.stream_id].body += event.data or b""
            if event.stream_id not in self.stalled:
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
        elif isinstance(event, h2.events.StreamEnded):
            self.streams[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            self.streams[event.stream_id].reset_code = int(event.error_code or 0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = True

    def pump_until(self, condition: Callable[[], object], what: str, timeout: float = 20) -> None:
        """Pump until ``condition()`` holds (bounded by ``timeout`` seconds)."""

        def check() -> object:
            self.pump()
            return condition()

        poll_until(check, what, timeout, interval=0)

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self._flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
