"""Node peers: npm projects under ``tests/peers/``, installed from their lockfile.

``npm_project(name)`` skips the test (with the reason) when ``node`` or
``npm`` is missing, and runs ``npm ci`` once when the project has no
``node_modules`` yet (kept, and gitignored; under a file lock: parallel test
processes install once).  Then either:

* ``run_peer("ai_sdk", "resume.mjs", url)`` runs a script with ``node`` and
  returns the JSON of its last output line, or
* ``run_vitest`` runs vitest test files with an environment and returns the
  outcome and the summary line (``Tests  332 passed | 6 skipped (338)``);
  several runs may go at once (``start_vitest`` + ``VitestRun.wait``).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PEERS", "VitestRun", "npm_project", "run_peer", "run_vitest", "start_vitest"]

PEERS = Path(__file__).resolve().parents[1] / "peers"
_SUMMARY = re.compile(r"^\s*Tests\s+(.*)$", re.MULTILINE)
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|todo)")


def npm_project(name: str, *, timeout: float = 600.0) -> Path:
    """The installed npm project ``tests/peers/{name}`` (``npm ci`` if needed)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the Node peers (apt-get install nodejs npm)")
    path = PEERS / name
    with open(path / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / "node_modules").is_dir():
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=path,
                capture_output=True,
                timeout=timeout,
            )
            if done.returncode != 0:
                output = (done.stdout + done.stderr).decode(errors="replace")
                raise AssertionError(f"npm ci failed in {path}:\n{output[-4000:]}")
    return path


def run_peer(project: str, script: str, *args: str, timeout: float = 60) -> Any:
    """Run ``tests/peers/PROJECT/SCRIPT ARGS…``; its last stdout line, parsed as JSON."""
    folder = npm_project(project)
    done = subprocess.run(
        ["node", script, *args], cwd=folder, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class VitestRun:
    """One vitest process; :meth:`wait` fills in the outcome."""

    proc: subprocess.Popen[bytes]
    returncode: int | None = None
    output: str = ""
    summary: str = ""

    def wait(self, timeout: float) -> VitestRun:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.returncode = self.proc.returncode
        self.output = out.decode(errors="replace")
        found = _SUMMARY.findall(self.output)
        self.summary = f"Tests  {found[-1].strip()}" if found else ""
        return self

    def count(self, kind: str) -> int:
        """How many tests the summary says ``kind`` (passed, failed, skipped)."""
        return sum(int(n) for n, k in _COUNT.findall(self.summary) if k == kind)


def start_vitest(project: Path, *files: str, env: dict[str, str]) -> VitestRun:
    vitest = project / "node_modules" / ".bin" / "vitest"
    full_env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", "CI": "1", **env}
    proc = subprocess.Popen(
        [str(vitest), "run", *files],
        cwd=project,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return VitestRun(proc)


def run_vitest(
    project: Path, *files: str, env: dict[str, str], timeout: float = 300.0
) -> VitestRun:
    return start_vitest(project, *files, env=env).wait(timeout)
