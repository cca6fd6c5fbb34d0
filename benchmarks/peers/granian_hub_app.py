"""The Granian peer of ``bench_h2``: ssehub's own ``HubApp`` served by Granian over HTTPS.

Granian (a Rust server) was the other candidate for ssehub's HTTP/2; serving the same
app under it shows what the choice of server costs, apart from the app.  ``bench_h2``
runs it with Granian's own command line (``python -m granian --interface asgi --http
auto --ssl-certificate F --ssl-keyfile F … benchmarks.peers.granian_hub_app:app``); it
needs ``granian`` installed, which is not in ssehub's lock: the benchmark leaves the row
out without it.
"""

from __future__ import annotations

from ssehub.server import HubApp, ServerSettings

app = HubApp(ServerSettings(store="memory"), install_signal_handlers=False)
