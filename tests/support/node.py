"""Node peers: scripts of an npm project under ``tests/peers/`` run with its pinned packages.

``run_peer("ai_sdk", "resume.mjs", url)`` installs the project from its lockfile
(``npm ci``, once: ``node_modules`` is kept, and gitignored), runs the script
with ``node`` and returns the JSON of its last output line.  Without ``node``
or ``npm`` the calling test is skipped with the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PEERS", "run_peer"]

PEERS = Path(__file__).resolve().parents[1] / "peers"


def run_peer(project: str, script: str, *args: str, timeout: float = 60) -> Any:
    """Run ``tests/peers/PROJECT/SCRIPT ARGS…``; its last stdout line, parsed as JSON."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the Node peers (apt-get install nodejs npm)")
    folder = PEERS / project
    if not (folder / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, timeout=300)
    done = subprocess.run(
        [node, script, *args], cwd=folder, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
