"""Filters on GET /recommend against real processes: category, price bounds, exclusions."""

from __future__ import annotations

from typing import Any

import pytest

from shared.client import InvalidRequestError, RecsysClient
from shared.datasets import synthetic
from shared.schemas.serving import RecommendedItem
from tests.conftest import SMALL_DATA

pytestmark = pytest.mark.integration

PARAMS = SMALL_DATA
assert isinstance(PARAMS, dict)
DATA = synthetic.generate(**PARAMS, n_new_products=10)  # what the stack was trained on


def _get(api: RecsysClient, **params: Any) -> list[RecommendedItem]:
    return api.recommend("U3", **params).items


def test_category_filter_holds_and_tops_up_to_k(api: RecsysClient) -> None:
    ints, catalog = DATA.interactions, DATA.items
    bought = set(ints.loc[ints["user_id"] == "U3", "product_id"])
    for category in sorted(set(catalog["category"])):
        available = len(set(catalog.loc[catalog["category"] == category, "product_id"]) - bought)
        items = _get(api, k=10, category=category)
        # k items whenever the catalog has k unbought ones in the category, else all of them
        assert len(items) == min(10, available), category
        assert {i.category for i in items} <= {category}


def test_price_bounds_hold(api: RecsysClient) -> None:
    items = _get(api, k=20, min_price=10, max_price=25)
    assert len(items) == 20
    assert all(i.price is not None and 10 <= i.price <= 25 for i in items)


def test_excluded_ids_never_come_back(api: RecsysClient) -> None:
    first = [i.product for i in _get(api, k=5)]
    items = _get(api, k=5, exclude=first)
    assert len(items) == 5
    assert not {i.product for i in items} & set(first)


@pytest.mark.parametrize(
    "params",
    [
        {"min_price": 30, "max_price": 10},
        {"min_price": -1},
        {"category": ""},
        {"exclude": ["P1", "bad\tid"]},
    ],
)
def test_bad_filters_answer_422_json(api: RecsysClient, params: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        _get(api, **params)
    assert refused.value.detail


def test_a_filter_nothing_passes_answers_an_empty_list(api: RecsysClient) -> None:
    assert _get(api, category="no-such-category") == []


def test_explain_adds_seeds_and_contributions_that_sum_to_the_score(api: RecsysClient) -> None:
    plain = _get(api, k=5)
    assert all(item.explanation is None for item in plain)
    items = _get(api, k=5, explain=True)
    assert [i.product for i in items] == [i.product for i in plain]
    for item in items:
        explanation = item.explanation
        assert explanation is not None
        total = sum(explanation.contributions.values()) + explanation.bias
        assert abs(total - item.score) < 1e-6
        assert "cand_score" in explanation.contributions
        if item.reason.startswith("similar_to:"):
            assert explanation.seed == item.reason.split(":", 1)[1]
