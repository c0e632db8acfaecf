"""`shuffled_links`: the control data of `TrainParams.shuffle_links_seed`."""

from __future__ import annotations

import pandas as pd

from shared.datasets.base import shuffled_links
from shared.datasets.synthetic import generate


def test_shuffled_links_keep_the_counts_and_lose_who_took_what() -> None:
    data = generate(200, 60, 60, seed=3)
    a, b = shuffled_links(data, 1), shuffled_links(data, 1)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)  # seeded
    assert not a.interactions.equals(shuffled_links(data, 2).interactions)
    before, after = data.interactions, a.interactions
    # every row keeps its user, time and rating; every product its number of rows
    for col in ("user_id", "ts", "rating"):
        assert after[col].equals(before[col])
    pd.testing.assert_series_equal(
        after["product_id"].value_counts().sort_index(),
        before["product_id"].value_counts().sort_index(),
    )
    # who took what is (nearly) gone: few rows keep their product
    assert (after["product_id"] == before["product_id"]).mean() < 0.1

    # segments' favourite categories (planted) fade to the catalog's own mix
    def top_share(frame: pd.DataFrame) -> float:
        joined = frame.merge(data.users, on="user_id").merge(data.items, on="product_id")
        return float(pd.crosstab(joined["segment"], joined["category"], normalize="index")
                     .max(axis=1).mean())  # fmt: skip

    assert top_share(before) > 0.3 > top_share(after)
    assert a.items is data.items and a.users is data.users
    assert data.interactions.equals(before)  # the input is not changed
