"""What a product page shows of a loaded version's items: the most taken ones, the trending ones,
those like one product, or any by id."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.ml.stage_one.serving import CandidateStage
from shared.schemas.serving import CatalogItem, RecommendedItem


def _item(model: CandidateStage, i: int, score: float, reason: str) -> RecommendedItem:
    cat = model.catalog
    return RecommendedItem(
        product=cat.items.ids[i],
        score=score,
        price=cat.prices[i],
        age=None,
        title=cat.titles[i],
        category=cat.categories[i],
        reason=reason,
    )


def popular_items(model: CandidateStage, n: int) -> list[RecommendedItem]:
    """The `n` most popular items, best first; `score` is the item's popularity."""
    order = model.index.popular(n, np.empty(0, dtype=np.int64))
    return [_item(model, i, float(model.index.popularity[i]), "popular") for i in order.tolist()]


def trending_items(
    model: CandidateStage,
    trending: Sequence[tuple[str, float]],
    n: int,
    allowed: np.ndarray | None,
) -> list[RecommendedItem]:
    """The strongest of `trending` (product, decayed weight of its recent events) that this
    version knows and `allowed` lets through, then the version's popular items up to `n`."""
    positions = model.catalog.items.positions([p for p, _ in trending])
    taken: list[int] = []
    out: list[RecommendedItem] = []
    for i, (_, score) in zip(positions.tolist(), trending, strict=True):
        if len(out) == n:
            return out
        if i >= 0 and (allowed is None or allowed[i]) and score > 0:
            out.append(_item(model, i, score, "trending"))
            taken.append(i)
    fill = model.index.popular(n - len(out), np.array(taken, dtype=np.int64), allowed)
    return out + [_item(model, i, 0.0, "popular") for i in fill.tolist()]


def similar_items(
    model: CandidateStage, product: str, n: int, allowed: np.ndarray | None
) -> list[RecommendedItem] | None:
    """Up to `n` items like `product`, best first: those the neighbour graph says are taken with
    it (baskets, sessions), then its nearest embeddings; None if the version does not know it."""
    pos = model.catalog.items.get(product)
    if pos < 0:
        return None
    index = model.index
    ok = np.ones(index.n_items, dtype=bool) if allowed is None else allowed.copy()
    ok[pos] = False
    picked: list[RecommendedItem] = []
    if index.graph is not None:
        row = index.graph[pos]
        cols, weights = row.indices, row.data
        keep = (weights > 0) & ok[cols]
        cols, weights = cols[keep], weights[keep]
        for j in np.argsort(-weights, kind="stable")[:n].tolist():
            picked.append(_item(model, int(cols[j]), float(weights[j]), f"together_with:{product}"))
        ok[cols] = False
    if len(picked) < n:
        width = min(index.n_items, 4 * n + 1)
        nbr, sims = index.similar(np.array([pos], dtype=np.int64), width)
        for i, s in zip(nbr[0].tolist(), sims[0].tolist(), strict=True):
            if len(picked) == n:
                break
            if ok[i] and s > 0:
                picked.append(_item(model, i, float(s), f"similar_to:{product}"))
                ok[i] = False
    if len(picked) < n:  # a product nobody took yet: the most taken of its category
        category = model.catalog.categories[pos]
        same = ok & (model.catalog_categories == category) if category is not None else ok & False
        fill = index.popular(n - len(picked), np.empty(0, dtype=np.int64), same)
        reason = f"popular_in:{category}"
        picked += [_item(model, i, float(index.popularity[i]), reason) for i in fill.tolist()]
    return picked


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
