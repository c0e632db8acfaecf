"""`make bench-ab` as a smoke test: the simulator's CLI starts its own stack, trains the two
versions, runs the A/B to a verdict and writes its JSON contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.conftest import run_benchmark

pytestmark = pytest.mark.integration


def test_the_cli_runs_an_ab_to_the_right_verdict(tmp_path: Path) -> None:
    out = tmp_path / "simulator.json"
    proc = run_benchmark("simulator", ["--seconds", "90", "--out", str(out)], timeout=400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "good beats control weak" in proc.stdout
    result = json.loads(out.read_text())
    keys = {"config", "versions", "sent", "report", "verdict", "winner", "right_verdict",
            "verdict_after_seconds", "lists_at_verdict", "timeline", "ended"}  # fmt: skip
    assert keys <= result.keys()
    assert result["right_verdict"] is True and result["winner"] == "good"
    assert result["errors"] == {}
    assert result["config"]["click_model"]["attention"] == 0.8
    assert [a["name"] for a in result["report"]["arms"]] == ["weak", "good"]
