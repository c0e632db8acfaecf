"""A baseline too big for the machine is skipped with its reason, never a crash; every model's
fit time and peak memory are reported."""

from __future__ import annotations

from shared.datasets import synthetic
from shared.ml.baselines import EASE, Popularity
from shared.training.evaluation import evaluate_split
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog
from shared.training.splits import temporal_split


def test_a_refused_baseline_is_skipped_with_the_reason() -> None:
    data = synthetic.generate(n_users=200, n_products=100, n_days=60)
    params = TrainParams(n_users=200, n_products=100, n_days=60, ranker_models=1)
    lines: list[str] = []
    ev = evaluate_split(
        temporal_split(data, 14),
        build_catalog(data),
        params,
        10,
        [Popularity(), EASE(max_items=50)],
        lines.append,
    )
    assert set(ev.skipped) == {"ease"} and "over its limit of 50" in ev.skipped["ease"]
    assert "ease" not in ev.models and any("ease skipped" in line for line in lines)
    assert ev.versus["baseline"] == "popularity"
    for name in ("popularity", "two_stage", "candidates_only"):
        assert ev.models[name]["fit_seconds"] >= 0 and ev.models[name]["peak_rss_mb"] > 50
