"""ssehub benchmarks: ``python -m benchmarks`` (or ``make bench``) runs them all.

Each ``bench_<name>.py`` module has a ``main(argv: list[str] | None = None)``
and runs alone as ``python -m benchmarks.bench_<name>``.  Peers (the apps we
compare against) live in ``benchmarks/peers/`` and run in the same process
tree, on the same machine, in the same run.
"""
