"""run_module: a benchmark past its timeout is stopped with everything it started."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from tests.benchmarks.conftest import run_module


def test_a_hanging_benchmark_and_its_children_are_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="ran past 3 s"):
        run_module("tests.sleeper", ["--child-pid", str(pid_file)], timeout=3)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10  # a bound on the wait for the signal to land
    while running(child):
        assert time.monotonic() < deadline, f"the benchmark's child {child} still runs"
        time.sleep(0.05)
    assert time.monotonic() - start < 30


def running(pid: int) -> bool:
    try:
        status: str = psutil.Process(pid).status()
        return status != str(psutil.STATUS_ZOMBIE)  # a zombie ran to its end
    except psutil.NoSuchProcess:
        return False


def test_a_finished_benchmark_gives_its_output() -> None:
    proc = run_module("json.tool", ["--help"], timeout=30)
    assert proc.returncode == 0 and "usage" in proc.stdout
