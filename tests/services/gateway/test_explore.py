"""The exploration slot: a uniform draw from the popular products that pass the filters, at the
slot's place; a draw shown elsewhere in the answer swaps places with the slot's product; its
propensity is one over how many it was drawn from."""

from __future__ import annotations

import random
from collections import Counter

from services.gateway.explore import EXPLORE_REASON, explore
from shared.schemas.serving import ItemFilters, RecommendedItem


def _item(product: str, category: str = "a", price: float = 1.0) -> RecommendedItem:
    return RecommendedItem(product=product, score=1.0, price=price, age=None, category=category,
                           reason="similar_to:X")  # fmt: skip


def test_the_slot_is_a_uniform_draw_with_its_propensity_and_no_product_twice() -> None:
    answer = [_item("A"), _item("B"), _item("C")]
    popular = [_item(p) for p in ("A", "B", "P1", "P2", "P3")] + [_item("X", price=99.0)]
    rng = random.Random(5)
    drawn: Counter[str] = Counter()
    for _ in range(5000):
        items, p, at = explore(answer, popular, ItemFilters(max_price=10.0), rng)
        assert at == 3 and p == 1 / 5  # A, B, P1-P3: X fails the price filter
        products = [i.product for i in items]
        assert len(set(products)) == 3 and items[2].reason == EXPLORE_REASON
        if products[2] in ("A", "B"):  # drawn from above: the two swapped places
            assert sorted(products[:2]) == sorted({"A", "B", "C"} - {products[2]})
        else:
            assert products[:2] == ["A", "B"]
        drawn[products[2]] += 1
    assert set(drawn) == {"A", "B", "P1", "P2", "P3"}
    assert all(900 < n < 1100 for n in drawn.values())  # 1,000 each expected


def test_the_slot_may_be_another_place_and_nothing_to_draw_changes_nothing() -> None:
    answer = [_item("A"), _item("B"), _item("C")]
    items, p, at = explore(answer, [_item("P")], ItemFilters(), random.Random(2), 1)
    assert (at, p, [i.product for i in items]) == (1, 1.0, ["P", "B", "C"])
    assert explore(answer, [_item("P")], ItemFilters(), random.Random(2), 9)[2] == 3  # the last
    nothing = explore(answer, [_item("X", price=99.0)], ItemFilters(max_price=1.0),
                      random.Random(1))  # fmt: skip
    assert nothing == (answer, None, None)
    assert explore([], [_item("B")], ItemFilters(), random.Random(1)) == ([], None, None)
