"""Business rules over a ranked list, as pure functions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.gateway.rules import apply
from shared.schemas.rules import Pin, Rules
from shared.schemas.serving import RecommendedItem


def _items() -> list[RecommendedItem]:
    cats = ["a", "a", "a", "b", "b", "c", "a", "c"]
    return [
        RecommendedItem(
            product=f"P{n}", score=10.0 - n, price=1.0, age=None, category=c, reason="r"
        )
        for n, c in enumerate(cats)
    ]


def _products(items: list[RecommendedItem]) -> list[str]:
    return [i.product for i in items]


def test_no_rules_is_the_ranked_list() -> None:
    assert _products(apply(_items(), Rules(), 3, {})) == ["P0", "P1", "P2"]


def test_boost_and_bury_move_whole_groups_and_say_so() -> None:
    out = apply(_items(), Rules(boost_category=["c"], bury_product=["P0"]), 4, {})
    assert _products(out) == ["P5", "P7", "P1", "P2"]
    assert out[0].reason == "r;boosted" and out[2].reason == "r;moved"
    last = apply(_items(), Rules(bury_category=["a"]), 8, {})
    assert _products(last)[-4:] == ["P0", "P1", "P2", "P6"]
    assert all(i.reason == "r;buried" for i in last[-4:])


def test_the_category_cap_holds() -> None:
    out = apply(_items(), Rules(max_per_category=1), 8, {})
    assert _products(out) == ["P0", "P3", "P5"]  # one per category, fewer than k rather than more


def test_mmr_spreads_categories() -> None:
    out = apply(_items(), Rules(diversity=0.8), 3, {})
    assert [i.category for i in out] == ["a", "b", "c"]


def test_pins_take_their_places_and_explain_shows_the_scores() -> None:
    pinned = RecommendedItem(product="X", score=0.0, price=2.0, age=None, reason="pinned")
    rules = Rules(pin=[Pin(product="X", position=2)], max_per_category=2)
    out = apply(_items(), rules, 4, {"X": pinned}, explain=True)
    assert _products(out) == ["P0", "X", "P1", "P3"]
    assert out[1].reason == "pinned"  # looked up to be pinned
    from_list = apply(_items(), Rules(pin=[Pin(product="P3", position=1)]), 3, {"P3": _items()[3]})
    assert _products(from_list) == ["P3", "P0", "P1"] and from_list[0].reason == "r;pinned"
    effect = out[3].explanation.rules if out[3].explanation else None
    assert effect is not None and effect.applied == ["moved"]
    assert effect.score_before == 7.0 and 0.0 <= effect.score_after <= 1.0
    # a pinned product nobody could describe (unknown, sold out) is left out
    assert "X" not in _products(apply(_items(), rules, 4, {}))


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ({"boost_category": ["a"], "bury_category": ["a"]}, "both boosted and buried"),
        ({"boost_product": ["P1"], "bury_product": ["P1"]}, "both boosted and buried"),
        ({"pin": [{"product": "X", "position": 1}, {"product": "Y", "position": 1}]}, "same"),
        ({"pin": [{"product": "X", "position": 1}, {"product": "X", "position": 2}]}, "twice"),
        ({"diversity": 1.5}, "less than or equal"),
    ],
)
def test_conflicting_rules_are_refused(rules: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Rules.model_validate(rules)


def test_a_pin_outside_k_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the list of k=3"):
        Rules(pin=[Pin(product="X", position=5)]).check_k(3)
