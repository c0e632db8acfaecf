"""`make bench-swap` as a smoke test: the script runs end to end and writes its JSON contract.

Only the shape and the correctness counts are checked here; its timing targets belong to the
benchmark's own report, since they depend on how busy the machine is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.conftest import run_benchmark

pytestmark = pytest.mark.integration


def test_quick_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "bench_swap.json"
    proc = run_benchmark("bench_swap", ["--quick", "--out", str(out)], timeout=280)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert {"config", "requests", "swaps", "probe", "targets", "all_targets_met"} <= result.keys()
    requests = result["requests"]
    for key in (
        "total",
        "failed",
        "missing_or_unknown_version",
        "degraded",
        "monotonicity_violations",
        "achieved_rate",
        "latency_ms",
    ):
        assert key in requests
    assert requests["total"] > 0
    assert isinstance(requests["failed"], int)
    assert {"p50", "p95", "max"} <= result["swaps"]["publish_to_served_s"].keys()
    assert len(result["swaps"]["per_version"]) == result["config"]["versions"] == 3
    assert {t["name"] for t in result["targets"]} >= {"failed requests", "publish->served p95 (s)"}
