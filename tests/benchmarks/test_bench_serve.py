"""`make bench` as a smoke test: the script runs end to end (tiny rate, synthetic data) and writes
its JSON. Nothing about time is asserted: that is the benchmark's own report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.conftest import run_benchmark

pytestmark = pytest.mark.integration


def test_tiny_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "bench_serve.json"
    args = ["--dataset", "synthetic", "--rates", "20", "--seconds", "2", "--inproc-calls", "30"]
    args += ["--wrk-seconds", "1", "--users", "50", "--out", str(out)]
    args += ["--workdir", str(tmp_path / "work"), "--tune-budget", "0"]
    proc = run_benchmark("bench_serve", args, timeout=280)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["retrain_seconds"] > 0 and result["model_version"] >= 1
    # measured once the ranker predicts with native code, as it serves
    assert result["ranker_native_members"] == result["config"]["ranker_models"] >= 1
    assert result["in_process"]["calls"] == 30 and result["in_process"]["p50_ms"] > 0
    for target in ("gateway", "trivial"):
        (run,) = result["runs"][target]
        assert run["rate"] == 20 and run["requests"] == 40
        assert run["errors"] == 0, run  # every answer a 200, even from a tiny stack
        assert 0 < run["p50_ms"] <= run["p99_ms"]
    assert set(result["ratios"]) == {"p50_vs_floor_at_200", "closed_loop_share"}
    assert "GET /recommend?k=10" in proc.stdout
