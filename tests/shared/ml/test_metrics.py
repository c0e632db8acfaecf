from __future__ import annotations

import math

import numpy as np
import pytest

from shared.ml.metrics import (
    average_precision_at_k,
    evaluate_rankings,
    hit_rate_at_k,
    ndcg_at_k,
    ndcg_curve,
    paired_ratio_ci,
    precision_at_k,
    recall_at_k,
    roc_auc,
)

LOG2_3 = math.log2(3)  # discount of rank 2
LOG2_5 = math.log2(5)  # discount of rank 4


def test_two_hits_in_top_five() -> None:
    ranked = ["a", "b", "c", "d", "e"]
    relevant = {"b", "d", "x"}  # hits at ranks 2 and 4; "x" is never ranked
    assert precision_at_k(ranked, relevant, 5) == pytest.approx(2 / 5)
    assert recall_at_k(ranked, relevant, 5) == pytest.approx(2 / 3)
    # DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068 = 1.06161
    # IDCG (3 relevant, k=5 -> 3 ideal slots) = 1 + 1/log2(3) + 1/log2(4) = 2.13093
    assert ndcg_at_k(ranked, relevant, 5) == pytest.approx(
        (1 / LOG2_3 + 1 / LOG2_5) / 2.13093, 1e-5
    )
    assert ndcg_at_k(ranked, relevant, 5) == pytest.approx(0.49819, abs=1e-5)
    # AP = (P@2 + P@4) / min(3, 5) = (1/2 + 2/4) / 3 = 1/3
    assert average_precision_at_k(ranked, relevant, 5) == pytest.approx(1 / 3)
    assert hit_rate_at_k(ranked, relevant, 5) == 1.0


def test_fewer_relevant_than_k() -> None:
    ranked = ["a", "b", "c"]
    relevant = {"a"}
    assert precision_at_k(ranked, relevant, 3) == pytest.approx(1 / 3)  # 1 hit / k=3
    assert recall_at_k(ranked, relevant, 3) == 1.0  # 1 / 1
    assert ndcg_at_k(ranked, relevant, 3) == 1.0  # DCG = IDCG = 1/log2(2)
    assert average_precision_at_k(ranked, relevant, 3) == 1.0  # P@1 / min(1, 3)


def test_more_relevant_than_k() -> None:
    ranked = ["a", "b", "c"]
    relevant = {"b", "c", "d"}
    # only the top 2 count: one hit at rank 2
    assert precision_at_k(ranked, relevant, 2) == pytest.approx(1 / 2)
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)
    # DCG = 1/log2(3); IDCG over min(3, 2) = 2 slots = 1 + 1/log2(3) -> 0.63093 / 1.63093
    assert ndcg_at_k(ranked, relevant, 2) == pytest.approx(0.38685, abs=1e-5)
    # AP = P@2 / min(3, 2) = (1/2) / 2
    assert average_precision_at_k(ranked, relevant, 2) == pytest.approx(0.25)


def test_no_hits_and_no_relevant() -> None:
    for relevant in ({"z"}, set[str]()):
        assert precision_at_k(["a", "b"], relevant, 2) == 0.0
        assert recall_at_k(["a", "b"], relevant, 2) == 0.0
        assert ndcg_at_k(["a", "b"], relevant, 2) == 0.0
        assert average_precision_at_k(["a", "b"], relevant, 2) == 0.0
        assert hit_rate_at_k(["a", "b"], relevant, 2) == 0.0


def test_duplicate_in_ranking_counts_once() -> None:
    # "a" twice must not make precision 2/2 or nDCG > 1
    assert precision_at_k(["a", "a"], {"a"}, 2) == pytest.approx(1 / 2)
    assert ndcg_at_k(["a", "a"], {"a"}, 2) == 1.0


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError):
        precision_at_k(["a"], {"a"}, 0)


def test_evaluate_rankings_averages_over_users_with_relevant_items() -> None:
    rankings = {
        "u1": ["a", "b", "c"],  # k=2 -> [a, b]; hit at rank 1
        "u2": ["c", "d"],  # hit at rank 2
        "u3": ["a", "c"],  # no hit
        # "u4" absent: counts with an empty list
        "u5": ["e", "f"],  # no relevant items: skipped, also for coverage
    }
    relevant = {"u1": {"a"}, "u2": {"d", "e"}, "u3": {"f"}, "u4": {"a"}, "u5": set[str]()}
    out = evaluate_rankings(rankings, relevant, k=2, n_catalog=10)
    assert set(out) == {"precision@2", "recall@2", "ndcg@2", "map@2", "hit_rate@2", "coverage@2"}
    # 4 evaluated users (u1..u4)
    # precision: (1/2 + 1/2 + 0 + 0) / 4
    assert out["precision@2"] == pytest.approx(0.25)
    # recall: (1/1 + 1/2 + 0 + 0) / 4
    assert out["recall@2"] == pytest.approx(0.375)
    # ndcg: u1 = 1; u2 = (1/log2(3)) / (1 + 1/log2(3)) = 0.38685 -> (1 + 0.38685) / 4
    assert out["ndcg@2"] == pytest.approx((1 + (1 / LOG2_3) / (1 + 1 / LOG2_3)) / 4)
    assert out["ndcg@2"] == pytest.approx(0.34671, abs=1e-5)
    # map: u1 = 1/1; u2 = (1/2) / min(2, 2) = 0.25 -> 1.25 / 4
    assert out["map@2"] == pytest.approx(0.3125)
    # hit rate: u1 and u2 hit -> 2 / 4
    assert out["hit_rate@2"] == pytest.approx(0.5)
    # coverage: {a, b} | {c, d} | {a, c} = 4 distinct items / 10
    assert out["coverage@2"] == pytest.approx(0.4)


def test_evaluate_rankings_without_evaluable_users() -> None:
    out = evaluate_rankings({"u1": ["a"]}, {"u1": []}, k=5, n_catalog=3)
    assert out == {
        "precision@5": 0.0,
        "recall@5": 0.0,
        "ndcg@5": 0.0,
        "map@5": 0.0,
        "hit_rate@5": 0.0,
        "coverage@5": 0.0,
    }


def test_roc_auc() -> None:
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    # positive/negative pairs ranked right: (0.35>0.1), (0.8>0.1), (0.8>0.4); wrong: (0.35<0.4)
    assert roc_auc(labels, scores) == pytest.approx(3 / 4)
    assert roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])) == 0.5
    assert roc_auc(np.zeros(3), np.array([0.1, 0.2, 0.3])) == 0.5


def test_roc_auc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 50)
        scores = rng.integers(0, 5, 50).astype(float)  # many ties
        if 0 < labels.sum() < len(labels):
            assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_ndcg_curve_is_ndcg_at_each_k() -> None:
    ranked = ["a", "x", "b", "a", "y", "c"]
    for relevant in ({"a", "b", "c"}, {"b"}, {"z"}, set()):
        curve = ndcg_curve(ranked, relevant, 8)
        expected = [ndcg_at_k(ranked, relevant, k) for k in range(1, 9)]
        np.testing.assert_allclose(curve, expected)


def test_paired_ratio_of_identical_or_scaled_models_has_no_spread() -> None:
    theirs = np.array([0.0, 0.25, 0.5, 1.0, 0.75])
    assert paired_ratio_ci(theirs, theirs) == (1.0, 1.0, 1.0)
    # Paired: every resample keeps each user's own pair, so a model exactly twice as good stays
    # exactly twice as good in every draw.
    assert paired_ratio_ci(2 * theirs, theirs) == (2.0, 2.0, 2.0)


def test_paired_ratio_interval_by_hand() -> None:
    # Two users, each model wins one. Draws of two users: {0,0} has no baseline score (no
    # ratio), {1,1} gives 0, a mixed draw gives 1; so the ratios are 0 (a third) or 1.
    ratio, lo, hi = paired_ratio_ci([1.0, 0.0], [0.0, 1.0], samples=4000)
    assert (ratio, lo, hi) == (1.0, 0.0, 1.0)


def test_paired_ratio_interval_covers_a_planted_gain_and_narrows_with_users() -> None:
    rng = np.random.default_rng(3)

    def interval(n: int) -> tuple[float, float, float]:
        theirs = rng.uniform(0.2, 0.6, n)
        ours = theirs * 1.1 + rng.normal(0.0, 0.1, n)  # a 10 % gain, noisy per user
        return paired_ratio_ci(ours, theirs, seed=1)

    ratio, lo, hi = interval(5000)
    assert lo < 1.1 < hi and lo > 1.0  # the gain is real and inside the interval
    assert lo <= ratio <= hi
    _, small_lo, small_hi = interval(30)
    assert small_hi - small_lo > 3 * (hi - lo)


def test_paired_ratio_is_seeded_and_refuses_what_it_cannot_compare() -> None:
    ours, theirs = [0.3, 0.9, 0.1, 0.4], [0.2, 0.5, 0.3, 0.4]
    assert paired_ratio_ci(ours, theirs, seed=5) == paired_ratio_ci(ours, theirs, seed=5)
    assert all(math.isnan(v) for v in paired_ratio_ci([], []))
    assert all(math.isnan(v) for v in paired_ratio_ci([0.5, 0.2], [0.0, 0.0]))
    with pytest.raises(ValueError, match="one length"):
        paired_ratio_ci([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="level"):
        paired_ratio_ci(ours, theirs, level=1.0)
