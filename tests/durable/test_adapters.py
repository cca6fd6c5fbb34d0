"""The ``@durable-streams`` AI SDK and TanStack AI transport adapters against ``ssehub serve``.

``tests/peers/durable_streams/adapters.test.mjs`` writes a generation through
each adapter's server half, reads it live through its client half until the
stream closes, replays it, and resumes it from a mid-stream offset.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.node import npm_project, run_vitest
from tests.support.processes import start_hub


def test_the_ai_sdk_and_tanstack_adapters_write_read_live_replay_and_resume(tmp_path: Path) -> None:
    project = npm_project("durable_streams")
    args = ("--store", f"sqlite:{tmp_path / 'hub.db'}", "--no-demos", "--idle-timeout", "30s")
    with start_hub(args, log_dir=tmp_path) as hub:
        run = run_vitest(
            project, "adapters.test.mjs", env={"DURABLE_STREAMS_URL": hub.url}, timeout=120
        )
    print(run.summary)
    assert run.returncode == 0, run.output[-6000:]
    assert run.count("failed") == 0, run.summary
    assert run.count("passed") == 2, run.summary
