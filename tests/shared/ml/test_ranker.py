"""An averaged ranker: its score is the members' mean (over the first member's best rows), and
it survives its text artifact."""

from __future__ import annotations

import numpy as np

from shared.ml.features import FEATURE_NAMES
from shared.ml.ranker import CASCADE_ROWS, RankerModel, RankingData, fit_ranker


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
    mean = RankerModel.average(members)
    x = valid.x[:CASCADE_ROWS]
    expected = np.mean([m.score(x) for m in members], axis=0)
    np.testing.assert_allclose(mean.score(x), expected, rtol=1e-9)
    again = RankerModel.from_text(mean.to_text())
    assert len(again.boosters) == 3
    np.testing.assert_allclose(again.score(x), expected, rtol=1e-6)
    contrib = again.contributions(x)
    np.testing.assert_allclose(contrib.sum(axis=1), expected, rtol=1e-4, atol=1e-6)
    assert np.isfinite(mean.valid_ndcg)
    single = RankerModel.from_text(members[0].to_text())  # one member: LightGBM's own format
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
    scores = RankerModel.average(members).score(x)
    expected_top = np.mean([m.score(x[top]) for m in members], axis=0)
    np.testing.assert_allclose(scores[top], expected_top, rtol=1e-9)
    assert scores[top].min() > scores[rest].max()  # the re-scored rows come first
    order = rest[np.argsort(-scores[rest], kind="stable")]
    np.testing.assert_array_equal(order, rest[np.argsort(-first[rest], kind="stable")])
    assert RankerModel.average(members).score(x[:0]).shape == (0,)
