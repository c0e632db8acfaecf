"""An averaged ranker: its score is the members' mean (over the first member's best rows), and
it survives its text artifact; trees boosted from stage one's score carry that prior along."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from shared.ml.stage_two.features import COL, FEATURE_NAMES
from shared.ml.stage_two.model import (
    CASCADE_ROWS,
    PRIOR_HEADER,
    RankerEnsemble,
    RankingData,
    fit_ranker,
    stage_one_prior,
)


def _lists(rng: np.random.Generator, n_lists: int) -> RankingData:
    xs, ys = [], []
    for _ in range(n_lists):
        x = rng.normal(size=(20, len(FEATURE_NAMES))).astype(np.float32)
        x[:, FEATURE_NAMES.index("item_category")] = rng.integers(0, 3, 20)
        x[:, FEATURE_NAMES.index("user_segment")] = 0
        y = (x[:, 0] + 0.5 * rng.normal(size=20) > 1.0).astype(np.float32)
        xs.append(x)
        ys.append(y)
    return RankingData.stack(xs, ys)


def test_average_scores_the_members_mean_and_round_trips_as_text() -> None:
    rng = np.random.default_rng(0)
    train, valid = _lists(rng, 300), _lists(rng, 60)
    members = [fit_ranker(train, valid, 40, seed) for seed in (1, 2, 3)]
    mean = RankerEnsemble.average(members)
    x = valid.x[:CASCADE_ROWS]
    expected = np.mean([m.score(x) for m in members], axis=0)
    np.testing.assert_allclose(mean.score(x), expected, rtol=1e-9)
    again = RankerEnsemble.from_text(mean.to_text())
    assert len(again.boosters) == 3
    np.testing.assert_allclose(again.score(x), expected, rtol=1e-6)
    contrib = again.contributions(x)
    np.testing.assert_allclose(contrib.sum(axis=1), expected, rtol=1e-4, atol=1e-6)
    assert np.isfinite(mean.valid_ndcg)
    single = RankerEnsemble.from_text(members[0].to_text())  # one member: LightGBM's own format
    assert (
        len(single.boosters) == 1 and members[0].to_text() == members[0].booster.model_to_string()
    )


def test_members_after_the_first_rescore_only_its_best_rows() -> None:
    rng = np.random.default_rng(1)
    train, valid = _lists(rng, 300), _lists(rng, 60)
    members = [fit_ranker(train, valid, 40, seed) for seed in (1, 2, 3)]
    x = valid.x[: 3 * CASCADE_ROWS]
    first = members[0].score(x)
    top = np.argsort(-first, kind="stable")[:CASCADE_ROWS]
    rest = np.setdiff1d(np.arange(len(x)), top)
    scores = RankerEnsemble.average(members).score(x)
    expected_top = np.mean([m.score(x[top]) for m in members], axis=0)
    np.testing.assert_allclose(scores[top], expected_top, rtol=1e-9)
    assert scores[top].min() > scores[rest].max()  # the re-scored rows come first
    order = rest[np.argsort(-scores[rest], kind="stable")]
    np.testing.assert_array_equal(order, rest[np.argsort(-first[rest], kind="stable")])
    assert RankerEnsemble.average(members).score(x[:0]).shape == (0,)


def test_many_lists_scored_at_once_equal_each_list_scored_alone() -> None:
    rng = np.random.default_rng(3)
    train, valid = _stage_one_lists(rng, 200), _stage_one_lists(rng, 60)
    members = [fit_ranker(train, valid, 40, seed, prior_weight=1.0) for seed in (1, 2, 3)]
    # lists longer and shorter than the cascade's rows, and an empty one
    sizes = np.array([3 * CASCADE_ROWS, 7, 0, CASCADE_ROWS + 1, 1, 2 * CASCADE_ROWS])
    x = np.vstack([valid.x] * 8)[: sizes.sum()]
    bounds = np.cumsum(sizes)[:-1]
    for ranker in (members[0], RankerEnsemble.average(members), RankerEnsemble(prior_weight=1.0)):
        alone = [ranker.score(part) for part in np.split(x, bounds)]
        together = ranker.score_lists(x, sizes)
        assert len(together) == len(sizes)
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_array_equal(a, b)  # the same numbers, not only the same order
    empty = RankerEnsemble.average(members).score_lists(x[:0], np.array([0]))
    assert [a.shape for a in empty] == [(0,)]


def _stage_one_lists(rng: np.random.Generator, n_lists: int) -> RankingData:
    """Lists whose relevance follows stage one's relative score, plus a little from feature 5
    that stage one does not know."""
    xs, ys = [], []
    for _ in range(n_lists):
        x = rng.normal(size=(30, len(FEATURE_NAMES))).astype(np.float32)
        x[:, FEATURE_NAMES.index("item_category")] = rng.integers(0, 3, 30)
        x[:, FEATURE_NAMES.index("user_segment")] = 0
        rel = np.sort(rng.uniform(-0.2, 1.0, 30))[::-1]
        x[:, COL["cand_score_rel"]] = rel / rel.max()
        y = (3 * rel + 0.5 * x[:, 5] + 0.3 * rng.normal(size=30) > 2.4).astype(np.float32)
        xs.append(x)
        ys.append(y)
    return RankingData.stack(xs, ys)


def test_stage_one_prior_is_the_clipped_relative_score() -> None:
    x = np.zeros((4, len(FEATURE_NAMES)), dtype=np.float32)
    x[:, COL["cand_score_rel"]] = [1.0, 0.25, -3e8, np.nan]  # a near-zero best blows ratios up
    np.testing.assert_array_equal(stage_one_prior(x, 2.0), [2.0, 0.5, -2.0, 0.0])
    np.testing.assert_array_equal(stage_one_prior(x, 0.0), np.zeros(4))


def test_trees_boost_from_the_prior_in_training_and_serving() -> None:
    rng = np.random.default_rng(2)
    train, valid = _stage_one_lists(rng, 200), _stage_one_lists(rng, 60)
    members = [fit_ranker(train, valid, 40, seed, prior_weight=2.0) for seed in (1, 2)]
    plain = fit_ranker(train, valid, 40, 1)
    assert members[0].prior_weight == 2.0 and plain.prior_weight == 0.0
    # Trained from the prior (init_score), so other trees than from zero.
    assert members[0].booster.model_to_string() != plain.booster.model_to_string()
    x = valid.x[:CASCADE_ROWS]
    prior = stage_one_prior(x, 2.0)
    raw = members[0].booster.predict(x, raw_score=True)
    np.testing.assert_allclose(members[0].score(x), raw + prior, rtol=1e-9)
    mean = RankerEnsemble.average(members)
    expected = np.mean([m.score(x) for m in members], axis=0)
    np.testing.assert_allclose(mean.score(x), expected, rtol=1e-9)
    # Explanations still add up to the score: the prior counts for its feature.
    np.testing.assert_allclose(mean.contributions(x).sum(axis=1), expected, rtol=1e-4, atol=1e-6)
    text = mean.to_text()
    assert text.startswith(f"{PRIOR_HEADER}2.0 --#\n")
    again = RankerEnsemble.from_text(text)
    assert again.prior_weight == 2.0 and len(again.boosters) == 2
    np.testing.assert_allclose(again.score(x), expected, rtol=1e-6)
    # Artifacts from before priors existed (no header) load and score from zero.
    old = RankerEnsemble.from_text(plain.to_text())
    assert old.prior_weight == 0.0
    np.testing.assert_allclose(old.score(x), plain.booster.predict(x, raw_score=True))


def test_members_with_different_priors_or_a_bad_header_are_refused() -> None:
    rng = np.random.default_rng(3)
    train, valid = _stage_one_lists(rng, 60), _stage_one_lists(rng, 20)
    one, other = fit_ranker(train, valid, 5, 1, prior_weight=1.0), fit_ranker(train, valid, 5, 1)
    with pytest.raises(ValueError, match="different stage-one priors"):
        RankerEnsemble.average([one, other])
    trees = one.booster.model_to_string()
    for bad in ("x", "nan", "inf"):
        with pytest.raises(ValueError, match="prior weight"):
            RankerEnsemble.from_text(f"{PRIOR_HEADER}{bad} --#\n{trees}")
    assert isinstance(RankerEnsemble.from_text(one.to_text()).booster, lgb.Booster)


def test_unknown_categories_train_as_missing_values() -> None:
    """Served features code an unknown category or segment -1; LightGBM reads a negative category
    as missing and warns about it on every fit (on Online Retail's lists). The stacked rows carry
    NaN instead, which it reads the same way: the same trees, and -1 rows score the same."""
    rng = np.random.default_rng(3)
    cat, seg = FEATURE_NAMES.index("item_category"), FEATURE_NAMES.index("user_segment")
    xs, ys = [], []
    for _ in range(200):
        x = rng.normal(size=(20, len(FEATURE_NAMES))).astype(np.float32)
        x[:, cat] = rng.integers(-1, 3, 20)  # a quarter unknown, and the category matters
        x[:, seg] = rng.integers(-1, 2, 20)
        ys.append(((x[:, cat] == 2) | (x[:, 0] > 1.2)).astype(np.float32))
        xs.append(x)
    rows = RankingData.stack(xs, ys)
    raw = np.vstack(xs)
    unknown = raw[:, [cat, seg]] < 0
    assert unknown.any() and np.isnan(rows.x[:, [cat, seg]][unknown]).all()
    assert np.array_equal(rows.x[:, [cat, seg]][~unknown], raw[:, [cat, seg]][~unknown])
    assert (xs[0][:, cat] < 0).any()  # the caller's lists are left as they were

    def split(x: np.ndarray) -> tuple[RankingData, RankingData]:
        return RankingData(x[:3000], rows.y[:3000], rows.groups[:150]), RankingData(
            x[3000:], rows.y[3000:], rows.groups[150:]
        )

    model = fit_ranker(*split(rows.x), 60, seed=1)
    assert model.to_text() == fit_ranker(*split(raw), 60, seed=1).to_text()
    np.testing.assert_array_equal(model.score(raw[3000:]), model.score(rows.x[3000:]))


def test_binary_lists_keep_rows_and_groups_and_label_taken_items_1() -> None:
    x = np.zeros((4, len(FEATURE_NAMES)), dtype=np.float32)
    lists = RankingData(x, np.array([0.0, 5.0, 1.0, 0.0], dtype=np.float32), np.array([2, 2]))
    assert lists.graded
    binary = lists.binary()
    np.testing.assert_array_equal(binary.y, [0.0, 1.0, 1.0, 0.0])
    assert binary.x is lists.x and binary.groups is lists.groups and not binary.graded
    assert not RankingData.stack([], []).graded
