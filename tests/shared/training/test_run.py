"""run_training's output: the held-out evaluation the manifest keeps beside the metrics."""

from __future__ import annotations

import pytest

from shared.datasets import synthetic
from shared.training.params import TrainParams
from shared.training.run import run_training

PARAMS = TrainParams(
    n_users=200, n_products=100, n_days=60, num_boost_round=50, tune_budget_seconds=4
)


def test_evaluation_matches_the_flat_metrics() -> None:
    data = synthetic.generate(
        n_users=PARAMS.n_users, n_products=PARAMS.n_products, n_days=PARAMS.n_days
    )

    out = run_training(data, PARAMS)

    ev = out.evaluation
    assert ev is not None
    assert (ev.protocol, ev.k, ev.n_users) == ("temporal", 10, out.metrics["n_test_users"])
    assert set(ev.models) == {"two_stage", "popularity", "ease", "candidates_only"}
    assert ev.models["two_stage"]["ndcg@10"] == out.metrics["ndcg@10"]
    assert ev.models["popularity"]["recall@10"] == out.metrics["popularity_recall@10"]
    for name, curve in ev.ndcg_curves.items():
        assert len(curve) == 50
        assert curve[9] == pytest.approx(ev.models[name]["ndcg@10"], abs=1e-5)
    # Small enough to live in every manifest.
    assert len(ev.model_dump_json()) < 8_000
    # the recipe it trained is the one its tuning chose, from validation splits of the data
    assert out.tuning is not None and out.tuning.trials and out.params is not None
    for key, value in out.tuning.chosen.items():
        assert getattr(out.params, key) == value


def test_shuffled_links_train_a_model_that_knows_popularity_only() -> None:
    """`shuffle_links_seed` reaches training: the model's held-out NDCG falls from well above
    the popularity baseline's to about its level (on its shuffled held-out data nothing
    personal is there to find)."""
    params = TrainParams(n_users=300, n_products=150, n_days=90, tune_budget_seconds=0,
                         ranker_models=1, num_boost_round=50)  # fmt: skip
    data = synthetic.generate(n_users=300, n_products=150, n_days=90)
    good = run_training(data, params).metrics
    weak = run_training(data, params.model_copy(update={"shuffle_links_seed": 1})).metrics
    print(f"NDCG@10 two-stage / popularity: as is {good['ndcg@10']:.4f} / "
          f"{good['popularity_ndcg@10']:.4f}, shuffled {weak['ndcg@10']:.4f} / "
          f"{weak['popularity_ndcg@10']:.4f}")  # fmt: skip
    assert good["ndcg@10"] > 1.5 * good["popularity_ndcg@10"]
    assert weak["ndcg@10"] < 1.1 * weak["popularity_ndcg@10"]
