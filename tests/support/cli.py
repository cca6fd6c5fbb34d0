"""Run the real ``ssehub`` CLI as a subprocess, and watch one that keeps running.

Waiting is always for something the process printed, with a bounded deadline;
never a fixed sleep.  The environment drops variables that would force colour,
so output is exactly what a pipe gets.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["CliProcess", "assert_one_line_error", "cli_env", "run_cli"]

_COLOUR_VARS = ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR")


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _COLOUR_VARS and k != "SSEHUB_URL"}
    env.pop("SSEHUB_DEBUG", None)
    return {**env, **(extra or {})}


def run_cli(
    *args: str,
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """``python -m ssehub *args`` to completion; text stdout and stderr."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [sys.executable, "-m", "ssehub", *args],
        input=data,
        capture_output=True,
        env=cli_env(env),
        timeout=timeout,
        stdin=None if data is not None else subprocess.DEVNULL,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The command failed with ``code``, one ``Error:`` line and no traceback; return that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _pump(stream: IO[bytes], sink: queue.Queue[str | None]) -> None:
    for line in iter(stream.readline, b""):
        sink.put(line.decode("utf-8", "replace"))
    sink.put(None)


class CliProcess:
    """A running ``python -m ssehub …`` whose stdout and stderr lines are collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ssehub", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_env(env),
        )
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._ended_streams = 0
        self._out: queue.Queue[str | None] = queue.Queue()
        self._err: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        for stream, sink in ((self.proc.stdout, self._out), (self.proc.stderr, self._err)):
            threading.Thread(target=_pump, args=(stream, sink), daemon=True).start()

    def _collect(self) -> None:
        for sink, lines in ((self._out, self.stdout_lines), (self._err, self.stderr_lines)):
            while True:
                try:
                    line = sink.get_nowait()
                except queue.Empty:
                    break
                if line is None:
                    self._ended_streams += 1
                else:
                    lines.append(line)

    @property
    def stdout(self) -> str:
        self._collect()
        return "".join(self.stdout_lines)

    @property
    def stderr(self) -> str:
        self._collect()
        return "".join(self.stderr_lines)

    def wait_for_stderr(self, text: str, *, count: int = 1, timeout: float = 30.0) -> None:
        """Block until ``text`` appeared ``count`` times on stderr."""
        what = f"{text!r} ×{count} on stderr"
        self._wait(lambda: self.stderr.count(text) >= count, what, timeout)

    def wait_for_stdout_lines(self, count: int, *, timeout: float = 30.0) -> list[str]:
        self._wait(lambda: len(self.stdout.splitlines()) >= count, f"{count} lines", timeout)
        return self.stdout.splitlines()

    def _wait(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None and not condition():
                time.sleep(0.05)  # let the pump threads drain what the process wrote
                if condition():
                    return
                raise AssertionError(
                    f"exited with {self.proc.returncode} before {what}:\n"
                    f"stdout: {self.stdout}\nstderr: {self.stderr}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {what} within {timeout} s:\nstdout: {self.stdout}\nstderr: {self.stderr}"
                )
            time.sleep(0.02)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the exit; return the code (after collecting the rest of the output)."""
        code = self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + 10.0
        while True:
            self._collect()
            if self._ended_streams == 2:
                break
            if time.monotonic() > deadline:
                raise AssertionError("the output pipes did not close")
            time.sleep(0.01)
        return code

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> CliProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def tree_rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` and all its descendants, in MB, from /proc."""
    total_kb = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(child) for child in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def wait_bounded(cli: CliProcess, *, rss_mb: float, timeout: float = 60.0) -> tuple[int, float]:
    """Wait for ``cli`` to exit while its tree's RSS stays under ``rss_mb``; return (code, peak).

    Raises ``AssertionError`` (after killing it) as soon as the bound is passed,
    or when it has not exited within ``timeout`` seconds.
    """
    peak = 0.0
    deadline = time.monotonic() + timeout
    while cli.proc.poll() is None:
        peak = max(peak, tree_rss_mb(cli.proc.pid))
        if peak > rss_mb or time.monotonic() > deadline:
            cli.kill()
            raise AssertionError(
                f"RSS {peak:.0f} MB (bound {rss_mb:.0f} MB) or still running after {timeout} s;"
                f" stderr: {cli.stderr[-2000:]}"
            )
        time.sleep(0.05)
    return cli.wait(), peak
