"""`make bench-scale` as a smoke test: the script runs end to end and writes its JSON contract.

Only shape and sanity are checked; its latency target belongs to the benchmark's own report.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks.conftest import run_benchmark


def test_tiny_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "bench_scale.json"
    args = ["--sizes", "2000", "--queries", "50", "--ef-search", "50,100", "--out", str(out)]
    proc = run_benchmark("bench_scale", args, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert {"config", "results", "targets", "all_targets_met"} <= result.keys()
    assert result["config"]["sizes"] == [2000]
    rows = result["results"]
    assert [(r["backend"], r.get("ef_search")) for r in rows] == [
        ("exact", None),
        ("hnsw", 50),
        ("hnsw", 100),
    ]
    for r in rows:
        assert r["items"] == 2000 and r["queries"] == 50 and r["k"] == 100
        assert r["build_s"] >= 0
        assert 0.0 <= r["recall_mean"] <= 1.0 and 0.0 <= r["recall_p5"] <= 1.0
        for stats in (r["latency_ms"], r["cpu_ms"]):
            assert {"p50", "p99", "max", "mean"} <= stats.keys()
            assert 0 < stats["p50"] <= stats["p99"] <= stats["max"]
    assert rows[0]["recall_mean"] == 1.0  # exact against itself
    assert rows[2]["recall_mean"] >= 0.9  # a 2,000-item graph at ef 100 is nearly exact
    (target,) = result["targets"]
    assert target["items"] == 2000 and isinstance(target["met"], bool)
