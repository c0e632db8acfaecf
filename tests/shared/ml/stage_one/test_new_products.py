"""New products (unknown to a version) matched to a user's words."""

from __future__ import annotations

from shared.ml.stage_one.candidate_list import COLD_START
from shared.ml.stage_one.new_products import NewProducts, tokens
from shared.schemas.serving import ItemFilters


def _new() -> NewProducts:
    titles = [("Red ceramic mug", "kitchen", 5.0), ("Garden hose", "garden", 20.0),
              ("Blue ceramic mug", "kitchen", None)]  # fmt: skip
    return NewProducts(
        ["N1", "N2", "N3"],
        [tokens(t, c) for t, c, _ in titles],
        [c for _, c, _ in titles],
        [p for _, _, p in titles],
    )


def test_tokens_are_words_category_and_tags() -> None:
    assert tokens("Red MUG, 2x", "Kitchen", ["Gift"]) == {
        "red",
        "mug",
        "category:kitchen",
        "tag:gift",
    }


def test_products_reading_like_the_profile_come_first() -> None:
    profile = {"ceramic": 2.0, "mug": 2.0, "category:kitchen": 1.0, "red": 1.0}
    got = _new().matches(profile, 5, ItemFilters(), hidden=[])
    assert got.products == ["N1", "N3"]  # the hose shares nothing
    assert set(got.reasons) == {COLD_START}
    assert got.scores[0] > got.scores[1] >= 0.2


def test_filters_and_hidden_hold() -> None:
    profile = {"ceramic": 1.0, "mug": 1.0}
    new = _new()
    assert new.matches(profile, 5, ItemFilters(max_price=10), hidden=[]).products == ["N1"]
    assert new.matches(profile, 5, ItemFilters(), hidden=["N1"]).products == ["N3"]
    assert new.matches(profile, 5, ItemFilters(category=["garden"]), hidden=[]).products == []
    assert new.matches({}, 5, ItemFilters(), hidden=[]).products == []
