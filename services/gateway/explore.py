"""The exploration slot: with probability `GATEWAY_EXPLORE_RATE`, one place of an answer
(`GATEWAY_EXPLORE_POSITION`, the last by default) shows a product drawn uniformly from the
popular list (those passing the request's filters), and its propensity (1 / how many it was
drawn from) is logged with the served list. A draw already elsewhere in the answer swaps places
with the slot's product: no product shows twice, and every product of the pool has the same
chance of the slot whatever the model ranked (excluding what the answer shows would leave the
serving version's own favourites without support). Off-policy estimates of a version nobody
serves yet read those draws: a deterministic ranking alone gives them no support (its
propensities are 1 or 0)."""

from __future__ import annotations

import random

from services.gateway.popular import pick
from shared.schemas.serving import ItemFilters, RecommendedItem

EXPLORE_REASON = "explore"


def explore(
    items: list[RecommendedItem],
    popular: list[RecommendedItem],
    filters: ItemFilters,
    rng: random.Random,
    position: int = 0,
) -> tuple[list[RecommendedItem], float | None, int | None]:
    """`items` with a uniform draw from `popular` (filtered) at `position` (1-based; 0 or past
    the end: the last), the draw's probability and its position; `items` unchanged and None,
    None when nothing can be drawn."""
    pool = pick(popular, len(popular), filters)
    if not items or not pool:
        return items, None, None
    at = len(items) if position <= 0 or position > len(items) else position
    drawn = rng.choice(pool)
    out = list(items)
    elsewhere = next((n for n, i in enumerate(out) if i.product == drawn.product), None)
    if elsewhere is not None:  # shown already: it moves to the slot, the slot's goes there
        drawn = out[elsewhere]
        out[elsewhere] = out[at - 1]
    out[at - 1] = drawn.model_copy(update={"reason": EXPLORE_REASON, "explanation": None})
    return out, 1.0 / len(pool), at
