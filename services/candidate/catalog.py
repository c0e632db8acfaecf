"""What a product page shows of a loaded version's items: the most taken ones, or any by id."""

from __future__ import annotations

import numpy as np

from shared.ml.stage_one.serving import CandidateStage
from shared.schemas.serving import CatalogItem, RecommendedItem


def popular_items(model: CandidateStage, n: int) -> list[RecommendedItem]:
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


def catalog_items(model: CandidateStage, products: list[str]) -> list[CatalogItem]:
    """Title, price and category of each known product, in the order asked; unknown ones are
    left out (an id from another version, or a typo)."""
    cat = model.catalog
    positions = cat.items.positions(products).tolist()
    return [
        CatalogItem(
            product=product, title=cat.titles[i], price=cat.prices[i], category=cat.categories[i]
        )
        for product, i in zip(products, positions, strict=True)
        if i >= 0
    ]
