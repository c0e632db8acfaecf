"""The training pipeline end to end in-process, on small synthetic data with planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.datasets import synthetic
from shared.ml.baselines import EASE
from shared.ml.interactions import DAY
from shared.ml.stage_one.candidate_list import CandidateList
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_two.serving import RankingStage
from shared.training import pipeline
from shared.training.lists import random_windows, ranking_rows, relevance_label, temporal_windows
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog, fit_two_stage, stage_one
from shared.training.run import TrainOutput, run_training
from shared.training.splits import held_out_strength

PARAMS = TrainParams(n_users=300, n_products=150, n_days=90, tune_budget_seconds=0)


@pytest.fixture(scope="module")
def trained() -> TrainOutput:
    data = synthetic.generate(
        n_users=PARAMS.n_users, n_products=PARAMS.n_products, n_days=PARAMS.n_days
    )
    stages: list[tuple[str, float]] = []
    out = run_training(data, PARAMS, lambda stage, fraction: stages.append((stage, fraction)))
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] < 1
    assert {"loading", "features", "ranker", "candidates", "evaluation", "publishing"} <= {
        s for s, _ in stages
    }
    return out


def test_two_stage_beats_popularity_on_held_out_window(trained: TrainOutput) -> None:
    m = trained.metrics
    assert m["n_test_users"] > 100
    assert m["ndcg@10"] > 1.2 * m["popularity_ndcg@10"]
    assert m["ndcg@10"] > m["candidates_only_ndcg@10"]  # the ranker adds to stage one
    assert m["ranker_auc"] > 0.6
    assert 0 < m["valid_ndcg@10"] <= 1


def test_artifacts_serve_both_stages(trained: TrainOutput) -> None:
    cm = CandidateStage.from_artifacts(trained.artifacts)
    rm = RankingStage.from_artifacts(trained.artifacts)
    known, cands = cm.candidates("U1", 50)
    assert known and len(cands) == 50
    items = rm.rank("U1", cands, 10)
    assert len(items) == 10
    scores = [i.score for i in items]
    assert scores == sorted(scores, reverse=True)
    assert all(i.price is not None and i.price > 0 and i.title for i in items)
    assert rm.rank("U1", CandidateList(), 10) == []


def test_ranker_labels_come_after_their_features_and_are_new() -> None:
    data = synthetic.generate(n_users=60, n_products=40, n_days=60)
    end = float(data.interactions["ts"].max()) + 1
    train_ws, valid_w = temporal_windows(data, end, label_days=14, n_train=2)
    assert [w.as_of for w in train_ws] == [end - 28 * DAY, end - 42 * DAY]
    assert valid_w.as_of == end - 14 * DAY
    for w in (*train_ws, valid_w):
        feats = w.features.interactions
        assert feats["ts"].max() < w.as_of  # features strictly before the label window
        assert w.labels
        had = set(zip(feats["user_id"], feats["product_id"], strict=True))
        for user, items in w.labels.items():
            assert user in set(feats["user_id"])
            assert not any((user, item) in had for item in items)


def test_a_window_sample_keeps_whole_users_and_is_seeded() -> None:
    data = synthetic.generate(n_users=60, n_products=40, n_days=60)
    end = float(data.interactions["ts"].max()) + 1
    _, w = temporal_windows(data, end, label_days=14)
    n = len(w.labels) // 2
    few = w.sample(n, seed=1)
    assert len(few.labels) == n and few.features is w.features and few.as_of == w.as_of
    assert all(few.labels[u] == w.labels[u] for u in few.labels)  # whole users, as they were
    assert few.labels == w.sample(n, seed=1).labels
    assert few.labels.keys() != w.sample(n, seed=2).labels.keys()
    assert w.sample(len(w.labels), seed=1) is w


def test_random_windows_hold_out_items_and_users() -> None:
    data = synthetic.generate(n_users=60, n_products=40, n_days=60)
    [train_w], valid_w = random_windows(data, seed=3)
    assert train_w.features is valid_w.features
    assert not set(train_w.labels) & set(valid_w.labels)  # validation users are not trained on
    had = set(
        zip(
            train_w.features.interactions["user_id"],
            train_w.features.interactions["product_id"],
            strict=True,
        )
    )
    assert all((u, i) not in had for u, items in train_w.labels.items() for i in items)


def test_random_folds_add_lists_without_touching_the_validation_users_held_out_items() -> None:
    data = synthetic.generate(n_users=60, n_products=40, n_days=60)
    train_ws, valid_w = random_windows(data, seed=3, n_folds=3)
    assert len(train_ws) == 3
    assert train_ws[0].features is valid_w.features  # one stage one serves both
    valid_pairs = {(u, i) for u, items in valid_w.labels.items() for i in items}
    for w in train_ws:
        feats = w.features.interactions
        had = set(zip(feats["user_id"], feats["product_id"], strict=True))
        assert not had & valid_pairs  # no fold learns from what validation is scored on
        assert not set(w.labels) & set(valid_w.labels)
        assert all((u, i) not in had for u, items in w.labels.items() for i in items)
    # The folds hold out different quarters: other labels for the same users.
    first, second = train_ws[0].labels, train_ws[1].labels
    common = set(first) & set(second)
    assert common and any(set(first[u]) != set(second[u]) for u in common)


@pytest.mark.parametrize("scheme", ["temporal", "random"])
def test_with_the_ranker_off_no_training_window_is_fitted(
    scheme: pipeline.LabelScheme, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = synthetic.generate(n_users=200, n_products=80, n_days=60)
    catalog = build_catalog(data)
    fitted: list[float] = []  # the `as_of` of every stage one fitted
    real = pipeline.stage_one

    def counting(*args: object) -> CandidateStage:
        fitted.append(float(args[2]))  # type: ignore[arg-type]
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "stage_one", counting)
    on = PARAMS.model_copy(update={"label_folds": 3, "train_windows": 2})
    fit_two_stage(data, catalog, on, scheme)
    with_ranker = len(fitted)
    fitted.clear()
    _, rm, valid_ndcg = fit_two_stage(
        data, catalog, on.model_copy(update={"use_ranker": False}), scheme
    )
    # validation lists and what is served: two stage ones (the training windows' are skipped)
    assert len(fitted) == 2 < with_ranker
    assert not rm.ranker.boosters and 0 < valid_ndcg <= 1


@pytest.mark.parametrize("scheme", ["temporal", "random"])
def test_the_final_ranker_trains_on_at_most_ranker_max_lists_shared_by_its_windows(
    scheme: pipeline.LabelScheme, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = synthetic.generate(n_users=200, n_products=80, n_days=60)
    catalog = build_catalog(data)
    users: list[int] = []  # the users of every list built (validation, then training windows)
    real = ranking_rows

    def counting(cm: CandidateStage, labels: dict[str, dict[str, float]], *args: object) -> object:
        users.append(len(labels))
        return real(cm, labels, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "ranking_rows", counting)
    every = PARAMS.model_copy(update={"label_folds": 2, "train_windows": 2, "ranker_max_lists": 0})
    fit_two_stage(data, catalog, every, scheme)
    assert len(users) == 3 and min(users) > 30  # validation and two training windows, whole
    whole = list(users)
    users.clear()
    fit_two_stage(data, catalog, every.model_copy(update={"ranker_max_lists": 60}), scheme)
    assert users == [30, 30, 30] != whole  # two windows: 30 lists each, validation one share
    users.clear()
    fit_two_stage(
        data, catalog, every.model_copy(update={"ranker_max_lists": 2 * max(whole)}), scheme
    )
    assert users == whole  # under the bound: every list


def test_labels_are_as_strong_as_the_interaction_when_graded() -> None:
    data = synthetic.generate(n_users=200, n_products=80, n_days=60)
    end = float(data.interactions["ts"].max()) + 1
    train_ws, _ = temporal_windows(data, end, label_days=14)
    w = train_ws[0]
    catalog = build_catalog(data)
    cm = stage_one(w.features, catalog, w.as_of, PARAMS)
    graded = ranking_rows(cm, w.labels, 50, graded=True)
    binary = ranking_rows(cm, w.labels, 50, graded=False)
    np.testing.assert_array_equal(graded.groups, binary.groups)  # the same lists
    np.testing.assert_array_equal(graded.y > 0, binary.y > 0)  # the same positives
    assert set(np.unique(binary.y)) == {0.0, 1.0}
    assert graded.y.max() > 1  # synthetic ratings run 1..5: a five-star item outweighs a one
    assert set(np.unique(graded.y)) <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    assert [relevance_label(s) for s in (0.2, 1.0, 2.6, 5.0, 99.0)] == [1, 1, 3, 5, 30]


def test_a_window_keeps_the_strongest_rating_of_an_item() -> None:
    before = pd.DataFrame({"user_id": ["u"], "product_id": ["a"], "rating": [1.0], "ts": [0]})
    after = pd.DataFrame(
        {"user_id": ["u", "u", "u"], "product_id": ["b", "b", "a"], "rating": [1.0, 5.0, 3.0]}
    )
    assert held_out_strength(before, after) == {"u": {"b": 5.0}}  # "a" the user had already


def test_stage_ones_graph_is_ease_with_the_recipes_dropout() -> None:
    data = synthetic.generate(n_users=120, n_products=40, n_days=60, seed=5)
    catalog = build_catalog(data)
    as_of = float(data.interactions["ts"].max()) + 1
    n = len(catalog.items)
    params = PARAMS.model_copy(
        update={"graph_dropout": 0.5, "graph_l2": 20.0, "graph_neighbours": n, "graph_lowrank": 0}
    )
    cm = stage_one(data, catalog, as_of, params)
    assert cm.index.graph is not None
    ease = EASE(l2=20.0, dropout=0.5)
    ease.fit(cm.store.user_items.matrix(n))
    graph = cm.index.graph.toarray()
    kept = graph != 0
    assert kept.sum() > n * (n - 1) // 2  # unpruned: nearly every pair kept
    np.testing.assert_allclose(graph[kept], ease.item_weights[kept], rtol=1e-4, atol=1e-6)
    plain = stage_one(data, catalog, as_of, params.model_copy(update={"graph_dropout": 0.0}))
    assert plain.index.graph is not None
    assert not np.allclose(plain.index.graph.toarray(), graph)
