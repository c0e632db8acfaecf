"""The one feature module: values on hand-made data, no leakage past `as_of`, unknown users,
live interactions since `as_of` counted as history."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shared.datasets.base import Dataset
from shared.ml.interactions import IdMap
from shared.ml.stage_two.features import (
    FEATURE_NAMES,
    NO_HISTORY_DAYS,
    FeatureStore,
    LiveItems,
    build_feature_store,
    pair_features,
)

DAY = 86_400.0
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _tiny() -> tuple[Dataset, IdMap, IdMap]:
    interactions = pd.DataFrame(
        [
            ("U1", "P1", 1.0, 0),
            ("U1", "P1", 1.0, int(5 * DAY)),  # repeat purchase
            ("U1", "P2", 1.0, int(8 * DAY)),
            ("U2", "P2", 1.0, int(9 * DAY)),
            ("U1", "P3", 1.0, int(10 * DAY)),  # at as_of: must be ignored (label window)
        ],
        columns=["user_id", "product_id", "rating", "ts"],
    )
    items = pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3"],
            "title": ["a", "b", "c"],
            "category": ["x", "y", "x"],
            "price": [10.0, 100.0, 1.0],
        }
    )
    users = pd.DataFrame({"user_id": ["U1", "U2"], "age": [30.0, 50.0], "segment": ["s", "t"]})
    return (
        Dataset("tiny", interactions, items, users),
        IdMap(["U1", "U2"]),
        IdMap(["P1", "P2", "P3"]),
    )


def _store() -> FeatureStore:
    data, users, items = _tiny()
    return build_feature_store(data, users, items, ["x", "y"], ["s", "t"], as_of=10 * DAY)


def test_pair_features_hand_computed() -> None:
    store = _store()
    x = pair_features(store, 0, np.array([0, 1, 2]), np.array([0.9, 0.5, 0.1], np.float32))
    assert x.shape == (3, len(FEATURE_NAMES))
    assert x[:, COL["cand_score"]].tolist() == [np.float32(0.9), np.float32(0.5), np.float32(0.1)]
    assert x[:, COL["cand_rank"]].tolist() == [0, 1, 2]
    # P1 bought twice by U1, last 5 days before as_of; P3 only at as_of -> unseen, no leakage
    assert x[:, COL["user_item_count"]].tolist() == [2, 1, 0]
    assert x[0, COL["user_item_days_since"]] == 5
    assert x[2, COL["user_item_days_since"]] == NO_HISTORY_DAYS
    assert x[2, COL["item_log_pop_all"]] == 0  # P3's only interaction is at as_of
    assert math.isclose(x[1, COL["item_log_pop_all"]], math.log1p(2), rel_tol=1e-6)
    # U1 history: P1, P1, P2 -> 2/3 in category x, 1/3 in y
    assert math.isclose(x[0, COL["user_category_share"]], 2 / 3, rel_tol=1e-6)
    assert math.isclose(x[1, COL["user_category_share"]], 1 / 3, rel_tol=1e-6)
    user_price = (2 * math.log1p(10) + math.log1p(100)) / 3
    assert math.isclose(x[1, COL["price_vs_user"]], math.log1p(100) - user_price, rel_tol=1e-5)
    assert x[0, COL["user_age"]] == 30
    # buyers of P2: U1 (30) and U2 (50) -> mean 40, |30 - 40| = 10
    assert x[1, COL["age_vs_item_buyers"]] == 10
    assert x[0, COL["user_days_since_last"]] == 2
    # around U1's last interaction (day 8): within 3 days P1 once (day 5) and P2 twice (days 8
    # and 9); within 14 days P1 twice; P3's only one is at as_of
    assert x[:, COL["item_log_pop_near_user_3d"]].tolist() == pytest.approx(
        [math.log1p(1), math.log1p(2), 0.0]
    )
    assert x[:, COL["item_log_pop_near_user_14d"]].tolist() == pytest.approx(
        [math.log1p(2), math.log1p(2), 0.0]
    )
    other = pair_features(store, 1, np.array([0, 1]), np.zeros(2, np.float32))  # U2: day 9
    assert other[:, COL["item_log_pop_near_user_3d"]].tolist() == pytest.approx(
        [0.0, math.log1p(2)]
    )


def test_unknown_user_gets_item_features_only() -> None:
    x = pair_features(_store(), -1, np.array([1]), np.array([0.0], np.float32))
    assert np.isnan(x[0, COL["user_age"]]) and np.isnan(x[0, COL["user_category_share"]])
    assert x[0, COL["user_item_count"]] == 0
    assert x[0, COL["item_log_price"]] > 0
    assert np.isnan(x[0, COL["item_log_pop_near_user_3d"]])  # no last interaction to be near


def test_store_round_trips_without_pickle() -> None:
    store = _store()
    again = FeatureStore.from_bytes(store.to_bytes())
    x = pair_features(store, 0, np.array([0, 1]), np.zeros(2, np.float32))
    y = pair_features(again, 0, np.array([0, 1]), np.zeros(2, np.float32))
    np.testing.assert_array_equal(x, y)
    assert again.as_of == store.as_of


def test_live_interactions_count_as_history() -> None:
    store = _store()  # U1: P1 twice (last 5 days before as_of), P2 once (2 days before)
    items = np.array([0, 1, 2])
    before = pair_features(store, 0, items, np.zeros(3, np.float32))
    # Since as_of: P3 bought twice (last half a day after as_of), P1 once; "P9" (-1) is unknown.
    live = LiveItems(
        np.array([2, 0, -1]), np.array([2.0, 1.0, 1.0]), np.array([10.5, 10.2, 10.1]) * DAY
    )
    x = pair_features(store, 0, items, np.zeros(3, np.float32), live=live)
    assert x[:, COL["user_item_count"]].tolist() == [3, 1, 2]  # P1 2 + 1, P2 1, P3 0 + 2
    # after as_of is as recent as history gets: 0 days, never negative
    assert x[:, COL["user_item_days_since"]].tolist() == [0, 2, 0]
    assert (x[:, COL["user_days_since_last"]] == 0).all()
    assert np.allclose(x[:, COL["user_log_activity"]], math.log1p(3 + 4))  # 3 stored + 4 live
    # the user's last interaction is now (as_of, day 10): within 3 days of it P2 twice, P1 none
    assert x[:, COL["item_log_pop_near_user_3d"]].tolist() == pytest.approx(
        [0.0, math.log1p(2), 0.0]
    )
    changed = {COL[n] for n in ("user_item_count", "user_item_days_since", "user_days_since_last",
                                "user_log_activity", "item_log_pop_near_user_3d",
                                "item_log_pop_near_user_14d")}  # fmt: skip
    others = [c for c in range(len(FEATURE_NAMES)) if c not in changed]
    np.testing.assert_array_equal(x[:, others], before[:, others])


def test_an_unknown_user_with_live_interactions_has_that_history() -> None:
    live = LiveItems(np.array([1]), np.array([1.0]), np.array([9.0 * DAY]))  # a day before as_of
    x = pair_features(_store(), -1, np.array([0, 1]), np.zeros(2, np.float32), live=live)
    assert x[:, COL["user_item_count"]].tolist() == [0, 1]
    assert x[:, COL["user_item_days_since"]].tolist() == [NO_HISTORY_DAYS, 1]
    assert x[:, COL["user_days_since_last"]].tolist() == [1, 1]
    assert np.allclose(x[:, COL["user_log_activity"]], math.log1p(1))
