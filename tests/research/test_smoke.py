"""The research scripts' one cheap run each in the default test run: their whole `main` on a tiny
synthetic data set, so that a change of the product code they call shows here. Their other tests
carry the `research` mark (`pytest -m research tests/research`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from research import probe_stacking, tune_quality
from shared.datasets import synthetic
from shared.datasets.base import Dataset

# The smallest catalog the probes take: 100 items for the pruned graph, 51 users for user k-NN.
TINY = {"n_users": 120, "n_products": 120, "n_days": 60, "seed": 5}


def test_probe_stacking_runs_its_cheap_experiments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def load(folder: Path) -> tuple[Dataset, None]:  # in place of the MovieLens 100K loader
        return synthetic.generate(**TINY), None

    monkeypatch.setattr(probe_stacking, "load", load)
    out = tmp_path / "probe.json"
    # `stack` (five LightGBM rankers) runs in test_probe_stacking.py, research-marked.
    args = ["--data-path", str(tmp_path), "--seeds", "7", "--out", str(out)]
    probe_stacking.main([*args, "--experiments", "session,span,lowpass"])
    summary = json.loads(out.read_text())["summary"]
    assert set(summary) == {"session_ratio_mean", "span_ratio_mean", "lowpass_ratio_mean"}
    assert all(math.isfinite(r) and r > 0 for s in summary.values() for r in s.values())


def test_tune_quality_scores_a_validation_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = ["n_users=80", "n_products=40", "n_days=90", "ranker_models=1"]
    tune_quality.main(["--dataset", "synthetic", "--data-path", str(tmp_path), *overrides])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("valid: two_stage / best baseline = ")
    assert float(last.rsplit(" ", 1)[1]) > 0
