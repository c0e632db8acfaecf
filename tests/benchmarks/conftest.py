"""Benchmarks run as the user runs them: `python -m benchmarks.<name>` in a child process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(module: str, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks.<module> args`."""
    return run_module(f"benchmarks.{module}", args, timeout)


def run_module(module: str, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m <module> args` from the repository root (where `-m benchmarks...`
    resolves), in a process group of its own: past `timeout` the whole group is stopped, the
    stack it started included (Redis, uvicorn, Celery), rather than the script alone, which
    would leave its stack running for the tests after it. Then the test fails."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                stdout, stderr = proc.communicate(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        pytest.fail(f"{module} ran past {timeout:.0f} s; its process group was stopped")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
