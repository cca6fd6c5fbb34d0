"""The Nchan peer: nginx with the Nchan module (Debian's ``nginx-light`` + ``libnginx-mod-nchan``).

``python -m benchmarks.peers.nchan_app --port P --workers N`` writes an nginx config to a
temporary directory and *execs* nginx in the foreground (``daemon off``), so the bench's
process tree (master and workers) is the server under test.  The surface matches the
other peers: ``GET /topics/{topic}`` is an EventSource subscriber (Nchan opens with a
``: hi`` comment block, the client's "ready"), ``POST /topics/{topic}`` publishes the
*plain-text* body as the event's data (``201`` when the channel has subscribers;
Nchan does not parse JSON, so the bench publishes text to it), ``GET /healthz`` is 200.
Nchan's defaults otherwise (memory store, its own message buffer).

Install with ``apt-get install nginx-light libnginx-mod-nchan`` (Debian/Ubuntu).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")

CONFIG = """
load_module {module};
worker_processes {workers};
pid {root}/nginx.pid;
error_log stderr warn;
daemon off;
master_process on;
worker_rlimit_nofile 200000;
events {{ worker_connections 100000; }}
http {{
  access_log off;
  keepalive_requests 10000000;  # nginx's default 1,000 ends a serial publisher's connection
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /healthz {{ return 200 "ok\\n"; }}
    location ~ ^/topics/(.+)$ {{
      nchan_pubsub;
      nchan_channel_id $1;
      nchan_eventsource_event tick;
    }}
  }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists() or not MODULE.exists():
        sys.exit(
            "nchan peer: needs nginx and the Nchan module: apt-get install nginx-light "
            "libnginx-mod-nchan"
        )
    root = Path(tempfile.mkdtemp(prefix="ssehub-bench-nchan-"))
    conf = root / "nginx.conf"
    conf.write_text(CONFIG.format(module=MODULE, workers=args.workers, root=root, port=args.port))
    os.execv(nginx, [nginx, "-c", str(conf), "-p", str(root)])


if __name__ == "__main__":
    main()
