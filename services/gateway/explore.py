"""The exploration slot: with probability `GATEWAY_EXPLORE_RATE`, an answer's last place shows a
product drawn uniformly from the popular list (those passing the request's filters, not shown
above it), and its propensity (1 / how many it was drawn from) is logged with the served
list. Off-policy estimates of a version nobody serves yet read those draws: a deterministic
ranking alone gives them no support (its propensities are 1 or 0)."""

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
) -> tuple[list[RecommendedItem], float | None]:
    """`items` with the last one replaced by a uniform draw from `popular` (filtered, not in
    `items`), and the draw's probability; `items` unchanged and None when nothing can be drawn."""
    if not items:
        return items, None
    shown = {i.product for i in items[:-1]}  # the replaced one may be drawn back
    pool = [i for i in pick(popular, len(popular), filters) if i.product not in shown]
    if not pool:
        return items, None
    drawn = rng.choice(pool)
    slot = drawn.model_copy(update={"reason": EXPLORE_REASON, "explanation": None})
    return [*items[:-1], slot], 1.0 / len(pool)
