"""Installing ssehub: the Makefile refuses an old Python cleanly; the core install needs nothing.

The Makefile test runs ``make`` in a temporary copy of the three files it
reads, with ``PYTHON`` set to a wrapper that reports 3.10 (and, should the
version check ever go, makes a half-made ``.venv`` and fails, as a real 3.10
did).  The install test builds the wheel from this source tree and installs it
with ``--no-deps`` into a fresh venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

OLD_PYTHON = """#!/bin/sh
if [ "$1" = "-c" ]; then
  exec {python} -c 'import sys; sys.version_info = (3, 10, 14, "final", 0); exec(sys.argv[1])' "$2"
fi
mkdir -p .venv
exit 1
"""


@pytest.mark.parametrize("target", ["run", "test"])
def test_make_on_python_3_10_says_what_it_needs_and_leaves_no_venv(
    tmp_path: Path, target: str
) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    wrapper = tmp_path / "python3.10"
    wrapper.write_text(OLD_PYTHON.format(python=sys.executable))
    wrapper.chmod(0o755)
    done = subprocess.run(
        ["make", "--no-print-directory", target, f"PYTHON={wrapper}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MAKEFLAGS": ""},
    )
    assert done.returncode != 0
    assert "ssehub needs Python ≥ 3.11 (found 3.10)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".venv").exists()


def test_the_core_install_imports_the_protocol_without_any_third_party_package(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, ROOT],
        check=True,
        timeout=120,
    )
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", fresh], check=True, timeout=60)
    python = fresh / "bin" / "python"
    (wheel,) = wheels.glob("ssehub-*.whl")
    subprocess.run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", wheel],
        check=True,
        timeout=120,
    )
    probe = """
import importlib.util, sys
from ssehub.protocol import EventStreamParser, ServerSentEvent, encode
events = EventStreamParser().feed(encode(ServerSentEvent(data="hi", id="1")))
assert [(e.event, e.data, e.id) for e in events] == [("message", "hi", "1")], events
tops = {name.split(".")[0] for name in sys.modules}
foreign = sorted(tops - set(sys.stdlib_module_names) - {"ssehub", "__main__"})
assert not foreign, foreign
for extra in ("httpx", "starlette", "uvicorn", "redis", "click", "rich"):
    assert importlib.util.find_spec(extra) is None, f"{extra} came with the core install"
print("ok")
"""
    done = subprocess.run(
        [python, "-I", "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.stdout.strip() == "ok", done.stderr
