"""Server-Sent Events (SSE) 协议演示 — the seed's zero-dependency ``http.server`` demo.

Run it with ``python examples/04_sse_protocol.py`` and read it with
``curl -N http://localhost:8004``.  Standard library only.

Faithful to the seed tutorial (``sse_protocol_zh.md``): the same address
(0.0.0.0:8004), the same response headers in the same order, the same six
events with the same Chinese texts, each written as
``f"event: {event_type}\\ndata: {data_json}\\n\\n"`` with
``json.dumps(..., ensure_ascii=False)``, flushed, one second apart, and the
same console output.  What it adds, to be robust:

* ``ThreadingHTTPServer``: one daemon thread per client, so a second client is
  served while the first one is still streaming.
* A client that leaves early (``BrokenPipeError`` / ``ConnectionResetError``)
  ends its own stream quietly: one console line, no traceback.
* The connection is closed after the last event.  The seed's
  ``Connection: keep-alive`` header makes ``http.server`` wait for another
  request on the same connection, while the client (the response has no
  ``Content-Length``) waits for the body to end: both would wait forever.
* ``--host``, ``--port`` and ``--interval`` (seconds between events) options;
  Ctrl+C stops the server without a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The seed's six events, in order.
EVENTS: list[dict[str, Any]] = [
    {"event": "connected", "data": {"message": "服务器连接成功"}},
    {"event": "thinking", "data": {"step": "正在分析问题"}},
    {"event": "thinking", "data": {"step": "搜索知识库"}},
    {"event": "content", "data": {"text": "这是流式输出的一部分"}},
    {"event": "content", "data": {"text": "这是流式输出的下一部分"}},
    {"event": "done", "data": {"reason": "完成"}},
]

# One event's console block is printed as a unit, so two clients' blocks never interleave.
_print_lock = threading.Lock()


class SSEHandler(BaseHTTPRequestHandler):
    """Server-Sent Events (SSE) 协议演示"""

    #: Seconds to wait after each event (the seed's ``time.sleep(1)``).
    interval = 1.0

    def do_GET(self) -> None:
        try:
            self._stream_events()
        except (BrokenPipeError, ConnectionResetError):
            with _print_lock:
                print(f"客户端已断开: {self.client_address[0]}:{self.client_address[1]}")
        # Close after the last event: the body has no length, so its end is the connection's end.
        self.close_connection = True

    def _stream_events(self) -> None:
        self.send_response(200)

        # SSE 专用的 Content-Type
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")

        # 保持连接的重要配置
        self.send_header("Connection", "keep-alive")
        self.send_header("X-Accel-Buffering", "no")

        self.end_headers()

        for i, event in enumerate(EVENTS, 1):
            # SSE 事件格式:
            # event: 事件类型 (可选)
            # data: 数据内容 (必需)
            # 空行表示事件结束

            event_type = event.get("event", "message")
            data_json = json.dumps(event["data"], ensure_ascii=False)

            # 构建 SSE 消息
            sse_message = f"event: {event_type}\ndata: {data_json}\n\n"

            with _print_lock:
                print(f"事件 {i}:")
                print(f"  类型: {event_type}")
                print(f"  数据: {data_json}")
                print(f"  SSE格式:\n{sse_message!r}")

            self.wfile.write(sse_message.encode("utf-8"))
            self.wfile.flush()

            time.sleep(self.interval)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    """Parse the options, serve until Ctrl+C, return the exit status."""
    parser = argparse.ArgumentParser(description="SSE 协议演示服务 (the seed's http.server demo)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8004, help="port to listen on (default 8004)")
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between events (default 1.0)",
    )
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # show each line at once, even in a pipe
    if args.interval < 0:
        parser.error("--interval must not be negative")

    handler = type("SSEHandler", (SSEHandler,), {"interval": args.interval})
    try:
        server = ThreadingHTTPServer((args.host, args.port), handler)
    except OSError as exc:
        print(f"无法监听 {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    server.daemon_threads = True

    port = server.server_address[1]
    print(f"SSE 协议演示服务启动在 http://localhost:{port}")
    print(f"使用 curl 测试: curl -N http://localhost:{port}")
    print("使用 JavaScript 测试:")
    print(f"""
    const evtSource = new EventSource('http://localhost:{port}');
    evtSource.onmessage = function(e) {{
        console.log('收到消息:', e.data);
    }};
    """)
    print("按 Ctrl+C 停止服务")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("服务已停止")
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
