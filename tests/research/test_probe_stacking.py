"""research/probe_stacking.py: its session co-rating counts, its time-span push-down, and that it
only ever scores a validation split carved from the msr training part."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research import probe_stacking
from research.probe_stacking import (
    Catalog,
    Fold,
    lowpass_weights,
    pruned,
    run_span,
    session_gram,
    validation_fold,
)
from shared.datasets import synthetic
from shared.datasets.base import Dataset
from shared.training.splits import msr_split

pytestmark = pytest.mark.research  # the default run has test_smoke.py's run only

HOUR = 3600


def test_session_pairs_are_one_users_ratings_within_the_window() -> None:
    rows = pd.DataFrame(
        {
            "user_id": ["A", "A", "A", "B", "B"],
            "product_id": ["i0", "i1", "i2", "i0", "i2"],
            # A: i0 and i1 half an hour apart, i2 hours later; B: i0 and i2 a minute apart, at
            # the same moments as A's first rows (no pair may cross from one user to the other).
            "ts": [0, 1800, 10_000, 0, 60],
        }
    )
    gram = session_gram(Catalog.of(rows), rows, hours=1)
    expected = np.array([[2, 1, 1], [1, 1, 0], [1, 0, 2]], dtype=float)
    np.testing.assert_array_equal(gram, expected)
    wide = session_gram(Catalog.of(rows), rows, hours=24)  # every pair of one user
    np.testing.assert_array_equal(wide, [[2, 1, 2], [1, 1, 1], [2, 1, 2]])


def test_span_pushes_down_only_items_no_one_rated_in_the_users_time() -> None:
    # Users 1-3 rate a, b, c on days 0-2; six later users rate d, e and a from day 30. U1's c
    # is held out.
    day = 86_400
    rows = []
    for u in range(1, 4):
        rows += [(f"U{u}", p, t * day) for t, p in enumerate(["a", "b", "c"])]
    for u in range(4, 10):
        rows += [(f"U{u}", p, (30 + t) * day) for t, p in enumerate(["d", "e", "a"])]
    frame = pd.DataFrame(rows, columns=["user_id", "product_id", "ts"])
    fit = frame[~((frame["user_id"] == "U1") & (frame["product_id"] == "c"))]
    result = run_span(Catalog.of(frame), Fold(fit, {"U1": {"c"}}), seed=0)
    assert result["ease_ndcg"] == 0.5  # EASE puts d (via a, 6 co-raters) above the held-out c
    ratios = result["ratios"]
    # c itself was first rated a day after U1's last rating: with no margin it is pushed down
    # too and the order stays; with 1-7 days only d and e (from day 30) go and c comes first;
    # with 30 days of margin d (day 30 <= day 1 + 30) stays.
    assert (ratios["late 0d"], ratios["late 1d"], ratios["late 7d"]) == (1.0, 2.0, 2.0)
    assert ratios["late 30d"] == 1.0
    assert all(ratios[f"+early {d}d"] == ratios[f"late {d}d"] for d in (0, 1, 7, 30))


def test_lowpass_keeps_the_main_taste_directions_only() -> None:
    # Two blocks of users and items: one block's items say nothing of the other's.
    x = np.zeros((6, 4))
    x[:3, :2] = 1.0
    x[3:, 2:] = 1.0
    x[0, 1] = 0.0  # not a perfect block, so the small directions are not empty
    full = lowpass_weights(x, dims=4)  # every direction kept: the filter passes all through
    np.testing.assert_allclose(full, np.eye(4), atol=1e-12)
    two = lowpass_weights(x, dims=2)  # the two block directions only
    np.testing.assert_allclose(two[:2, 2:], 0.0, atol=1e-12)
    np.testing.assert_allclose(two[2:, :2], 0.0, atol=1e-12)
    assert (two[:2, :2] > 0).all() and (two[2:, 2:] > 0).all()


def test_pruned_keeps_each_rows_largest_weights() -> None:
    w = np.array([[0.0, 3.0, 1.0, 2.0], [4.0, -1.0, 0.5, 0.0]])
    np.testing.assert_array_equal(pruned(w, 2), [[0, 3, 0, 2], [4, 0, 0.5, 0]])


def test_the_validation_fold_lies_inside_the_msr_training_part() -> None:
    data = synthetic.generate(n_users=60, n_products=30, n_days=60, seed=5)
    train = msr_split(data).train.interactions
    fold = validation_fold(data, seed=7)
    key = ["user_id", "product_id", "ts"]
    inside = fold.fit[key].merge(train[key], how="left", indicator=True)
    assert (inside["_merge"] == "both").all() and len(fold.fit) < len(train)
    for user, items in fold.truth.items():
        assert items <= set(train.loc[train["user_id"] == user, "product_id"])


def test_every_experiment_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole script, `stack` included (test_smoke.py runs the cheap experiments only)."""

    def load(folder: Path) -> tuple[Dataset, None]:  # in place of the MovieLens 100K loader
        return synthetic.generate(n_users=120, n_products=120, n_days=60, seed=5), None

    monkeypatch.setattr(probe_stacking, "load", load)
    out = tmp_path / "probe.json"
    probe_stacking.main(["--data-path", str(tmp_path), "--seeds", "7", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["summary"]["stack_ratio_mean"] > 0
    assert len(result["stack"][0]["best_iterations"]) == probe_stacking.N_RANKERS
