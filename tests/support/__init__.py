"""The test kit: every test imports its helpers from here, never from another test module.

- ``polling``: ``poll_until`` / ``apoll_until``, the one bounded wait.
- ``clock``: ``FakeClock``, moved by hand.
- ``ports``: ``free_port``, ``wait_for_port``.
- ``processes``: ``start_hub`` (a real ``ssehub serve`` on a free port, healthy).
- ``redis_server``: a private ``redis-server`` (fixtures ``redis_server``,
  ``shared_redis_server`` in ``tests/conftest.py``).
- ``hubs``: in-process ``Hub``/backends (memory, SQLite, Redis): ``open_hub``, ``make_backend``.
- ``apps``: ``HubApp`` in process behind httpx (request/response routes only).
- ``servers``: an ASGI app under a real uvicorn, in a thread or a subprocess.
- ``sse``: a bounded event-stream reader over httpx; ``streams``: the parser corpus.
- ``recorder``: a backend live-feed recorder; ``client``/``fault_server``: the client's
  fault-injecting server, hooks and scripts; ``cli``: the CLI as a subprocess;
  ``browser``: Chromium page helpers; ``fake_llm``: an OpenAI-compatible upstream;
  ``node``: the npm projects in ``tests/peers/``: scripts (``run_peer``) and vitest files
  (``run_vitest``, ``start_vitest``).
- ``h2client``: a raw HTTP/2 client over TLS (``h2``), stream by stream.
"""
