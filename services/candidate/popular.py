"""The most taken items of a loaded version, with what a product page shows of them."""

from __future__ import annotations

import numpy as np

from shared.ml.model import CandidateModel
from shared.schemas import RecommendedItem


def popular_items(model: CandidateModel, n: int) -> list[RecommendedItem]:
    """The `n` most popular items, best first; `score` is the item's popularity."""
    order = model.index.popular(n, np.empty(0, dtype=np.int64))
    cat = model.catalog
    return [
        RecommendedItem(
            product=cat.items.ids[i],
            score=float(model.index.popularity[i]),
            price=cat.prices[i],
            age=None,
            title=cat.titles[i],
            category=cat.categories[i],
            reason="popular",
        )
        for i in order.tolist()
    ]
