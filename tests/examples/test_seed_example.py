"""The seed's ``http.server`` demo, ``examples/04_sse_protocol.py``, run as a real subprocess.

Read with ``http.client`` on a free loopback port.  The expected bytes are what
the seed's code produces: ``f"event: {event_type}\\ndata: {data_json}\\n\\n"``
with ``json.dumps(..., ensure_ascii=False)`` (so a space after each JSON colon).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.polling import poll_until
from tests.support.processes import free_port, wait_for_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "04_sse_protocol.py"

SEED_EVENTS = [
    'event: connected\ndata: {"message": "服务器连接成功"}\n\n',
    'event: thinking\ndata: {"step": "正在分析问题"}\n\n',
    'event: thinking\ndata: {"step": "搜索知识库"}\n\n',
    'event: content\ndata: {"text": "这是流式输出的一部分"}\n\n',
    'event: content\ndata: {"text": "这是流式输出的下一部分"}\n\n',
    'event: done\ndata: {"reason": "完成"}\n\n',
]
SEED_BODY = "".join(SEED_EVENTS).encode("utf-8")
SEED_HEADERS = [
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("Connection", "keep-alive"),
    ("X-Accel-Buffering", "no"),
]
READ_TIMEOUT = 20.0  # seconds; only a bound for a failing test, never a measurement


@dataclass
class Example:
    proc: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def connect(self) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=READ_TIMEOUT)
        conn.request("GET", "/")
        return conn.getresponse()


def read_event(resp: http.client.HTTPResponse) -> bytes:
    """Read one event block (up to and including its blank line); b"" at end of body."""
    lines = []
    while True:
        line = resp.readline()
        lines.append(line)
        if line in (b"\n", b""):
            return b"".join(lines)


@pytest.fixture
def run_example(tmp_path: Path) -> Iterator[Callable[..., Example]]:
    started: list[Example] = []

    def run(*args: str) -> Example:
        port = free_port()
        out, err = tmp_path / f"stdout-{port}.txt", tmp_path / f"stderr-{port}.txt"
        env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, str(EXAMPLE), "--host", "127.0.0.1", "--port", str(port), *args]
        with open(out, "wb") as out_file, open(err, "wb") as err_file:
            proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file, env=env)
        example = Example(proc, port, out, err)
        started.append(example)
        wait_for_port(port, proc=proc)
        return example

    yield run
    for example in started:
        if example.proc.poll() is None:
            example.proc.kill()
        example.proc.wait(timeout=10)


def test_serves_the_seed_headers_in_the_seed_order(run_example: Callable[..., Example]) -> None:
    example = run_example("--interval", "0")
    resp = example.connect()
    assert resp.status == 200
    headers = [(k, v) for k, v in resp.getheaders() if k not in ("Server", "Date")]
    assert headers == SEED_HEADERS
    resp.read()


def test_streams_the_seed_body_byte_for_byte_then_closes(
    run_example: Callable[..., Example],
) -> None:
    example = run_example("--interval", "0.01")
    resp = example.connect()
    assert resp.read() == SEED_BODY  # read() returns only once the server closes the connection


def test_prints_the_seed_startup_messages_and_each_event(
    run_example: Callable[..., Example],
) -> None:
    example = run_example("--interval", "0")
    example.connect().read()
    url = f"http://localhost:{example.port}"
    poll_until(lambda: "事件 6:" in example.stdout(), "the sixth event's console block")
    out = example.stdout()
    assert out.startswith(
        f"SSE 协议演示服务启动在 {url}\n"
        f"使用 curl 测试: curl -N {url}\n"
        "使用 JavaScript 测试:\n"
        "\n"
        f"    const evtSource = new EventSource('{url}');\n"
        "    evtSource.onmessage = function(e) {\n"
        "        console.log('收到消息:', e.data);\n"
        "    };\n"
        "    \n"
        "按 Ctrl+C 停止服务\n"
    )
    assert (
        "事件 1:\n"
        "  类型: connected\n"
        '  数据: {"message": "服务器连接成功"}\n'
        "  SSE格式:\n"
        '\'event: connected\\ndata: {"message": "服务器连接成功"}\\n\\n\'\n'
    ) in out


def test_two_clients_are_streamed_at_the_same_time(run_example: Callable[..., Example]) -> None:
    """The second client gets its first event while the first client's stream is still open.

    With one event an hour, the first stream can't have ended: a server that
    served one client at a time would give the second client nothing.
    """
    example = run_example("--interval", "3600")
    first = example.connect()
    assert read_event(first) == SEED_EVENTS[0].encode()
    second = example.connect()
    assert read_event(second) == SEED_EVENTS[0].encode()
    first.close()
    second.close()


def test_two_clients_both_get_all_six_events(run_example: Callable[..., Example]) -> None:
    example = run_example("--interval", "0.05")
    bodies: dict[int, bytes] = {}

    def read_all(n: int) -> None:
        bodies[n] = example.connect().read()

    threads = [threading.Thread(target=read_all, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=READ_TIMEOUT)
    assert bodies == {1: SEED_BODY, 2: SEED_BODY}


def test_client_leaving_early_leaves_no_traceback_and_server_keeps_serving(
    run_example: Callable[..., Example],
) -> None:
    example = run_example("--interval", "0.05")
    resp = example.connect()
    assert read_event(resp) == SEED_EVENTS[0].encode()
    resp.close()
    poll_until(lambda: "客户端已断开" in example.stdout(), "the server to notice the disconnect")
    assert example.connect().read() == SEED_BODY
    assert example.proc.poll() is None
    assert "Traceback" not in example.stderr()
    assert "Error" not in example.stderr()


def test_ctrl_c_stops_the_server_without_a_traceback(run_example: Callable[..., Example]) -> None:
    example = run_example("--interval", "3600")
    resp = example.connect()
    assert read_event(resp) == SEED_EVENTS[0].encode()  # a client is mid-stream
    example.proc.send_signal(signal.SIGINT)
    assert example.proc.wait(timeout=READ_TIMEOUT) == 0
    resp.close()
    assert "Traceback" not in example.stderr()
    assert "服务已停止" in example.stdout()
