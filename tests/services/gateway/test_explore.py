"""The exploration slot: the last place becomes a uniform draw from the popular products that
pass the filters and are not in the answer; its propensity is one over how many there were."""

from __future__ import annotations

import random
from collections import Counter

from services.gateway.explore import EXPLORE_REASON, explore
from shared.schemas.serving import ItemFilters, RecommendedItem


def _item(product: str, category: str = "a", price: float = 1.0) -> RecommendedItem:
    return RecommendedItem(product=product, score=1.0, price=price, age=None, category=category,
                           reason="similar_to:X")  # fmt: skip


def test_the_last_place_is_a_uniform_draw_with_its_propensity() -> None:
    answer = [_item("A"), _item("B"), _item("C")]
    popular = [_item(p) for p in ("A", "B", "C", "P1", "P2", "P3")] + [_item("X", price=99.0)]
    rng = random.Random(5)
    drawn: Counter[str] = Counter()
    for _ in range(4000):
        items, p = explore(answer, popular, ItemFilters(max_price=10.0), rng)
        assert [i.product for i in items[:2]] == ["A", "B"] and items[2].reason == EXPLORE_REASON
        assert p == 1 / 4  # C (drawn back), P1-P3: X fails the price filter, A and B are above
        drawn[items[2].product] += 1
    assert set(drawn) == {"C", "P1", "P2", "P3"}
    assert all(900 < n < 1100 for n in drawn.values())  # 1,000 each expected


def test_nothing_to_draw_leaves_the_answer_as_it_was() -> None:
    two = [_item("A"), _item("B")]
    assert explore(two, [_item("A")], ItemFilters(), random.Random(1)) == (two, None)
    assert explore([], [_item("B")], ItemFilters(), random.Random(1)) == ([], None)
