"""`make soak` as a smoke test: half a minute at 20 req/s with its retrains, the ranker kill and
the Redis restart, on the whole `make run` stack. Only what must hold at any speed is asserted:
rows with requests, the faults happened, no 5xx. RSS and latency belong to the benchmark's
own report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.conftest import run_benchmark

pytestmark = pytest.mark.integration


# About 80 s on a quiet machine; the first training alone took 100 s once the machine was shared.
@pytest.mark.timeout(460)
def test_tiny_soak_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "bench_soak.json"
    args = ["--minutes", "0.5", "--interval", "10", "--warmup", "10", "--retrain-every", "0.25"]
    args += ["--rate", "20", "--users", "50", "--out", str(out), "--workdir", str(tmp_path / "w")]
    proc = run_benchmark("bench_soak", args, timeout=420)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert len(rows) == 3
    for row in rows:
        assert row["requests"] > 0, row
        assert {"errors", "errors_5xx", "degraded", "p50_ms", "p99_ms", "rss_mb"} <= row.keys()
        assert row["rss_mb"]["gateway"] > 0 and row["rss_mb"]["ranker"] > 0
    assert sum(r["requests"] for r in rows) == 600  # 20 req/s for 30 s
    kinds = [e["kind"] for e in result["events"]]
    assert "ranker_kill" in kinds and "redis_restart" in kinds and "retrain" in kinds
    (kill,) = [e for e in result["events"] if e["kind"] == "ranker_kill"]
    assert kill["restarted_t"] is not None  # the supervisor started it again
    (restart,) = [e for e in result["events"] if e["kind"] == "redis_restart"]
    assert restart["back_t"] > restart["stopped_t"] > restart["t"] - 1
    assert result["totals"]["errors_5xx"] == 0, result["five_xx_at"]
    assert {t["name"].split(":")[0] for t in result["targets"]} >= {"5xx answers", "RSS gateway"}
    assert out.with_suffix(".png").stat().st_size > 0
