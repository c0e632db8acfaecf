"""The canonical tables every dataset loader returns and every pipeline consumes."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

INTERACTION_COLUMNS = ["user_id", "product_id", "rating", "ts"]
ITEM_COLUMNS = ["product_id", "title", "category", "price"]
USER_COLUMNS = ["user_id", "age", "segment"]
# items may also carry `tags`: labels beside the category (genres, brand, collection), several in
# one cell separated by TAG_SEPARATOR ("Action|Comedy"); missing or empty when unknown.
TAG_SEPARATOR = "|"


@dataclass(frozen=True)
class Dataset:
    """interactions: user_id str, product_id str, rating float (>0 positive), ts int64 unix secs.
    items: product_id str, title str, category str, price float (NaN if unknown).
    users: user_id str, age float (NaN if unknown), segment str (segment, country, occupation…).
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame

    def __post_init__(self) -> None:
        for frame, cols in (
            (self.interactions, INTERACTION_COLUMNS),
            (self.items, ITEM_COLUMNS),
            (self.users, USER_COLUMNS),
        ):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise ValueError(f"dataset {self.name!r}: missing columns {missing}")


def shuffled_links(data: Dataset, seed: int) -> Dataset:
    """`data` with the interactions' products permuted among the rows (`TrainParams.
    shuffle_links_seed`): each row keeps its user, time and rating, each product its number of
    rows; which user took which product is random."""
    ints = data.interactions.copy()
    order = np.random.default_rng(seed).permutation(len(ints))
    ints["product_id"] = ints["product_id"].to_numpy()[order]
    return replace(data, interactions=ints)
