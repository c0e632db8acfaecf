"""Filters on GET /recommend against real processes: category, price bounds, exclusions."""

from __future__ import annotations

import httpx
import pytest

from services.launcher.stack import Stack
from shared.datasets import synthetic
from tests.conftest import SMALL_DATA

pytestmark = pytest.mark.integration

PARAMS = SMALL_DATA
assert isinstance(PARAMS, dict)
DATA = synthetic.generate(**PARAMS, n_new_products=10)  # what the stack was trained on


def _get(stack: Stack, **params: str | int | float) -> httpx.Response:
    return httpx.get(f"{stack.gateway_url}/recommend", params={"user": "U3", **params}, timeout=10)


def test_category_filter_holds_and_tops_up_to_k(stack: Stack) -> None:
    ints, catalog = DATA.interactions, DATA.items
    bought = set(ints.loc[ints["user_id"] == "U3", "product_id"])
    for category in sorted(set(catalog["category"])):
        available = len(set(catalog.loc[catalog["category"] == category, "product_id"]) - bought)
        items = _get(stack, k=10, category=category).json()
        # k items whenever the catalog has k unbought ones in the category, else all of them
        assert len(items) == min(10, available), category
        assert {i["category"] for i in items} <= {category}


def test_price_bounds_hold(stack: Stack) -> None:
    items = _get(stack, k=20, min_price=10, max_price=25).json()
    assert len(items) == 20
    assert all(10 <= i["price"] <= 25 for i in items)


def test_excluded_ids_never_come_back(stack: Stack) -> None:
    first = [i["product"] for i in _get(stack, k=5).json()]
    items = _get(stack, k=5, exclude=",".join(first)).json()
    assert len(items) == 5
    assert not {i["product"] for i in items} & set(first)


@pytest.mark.parametrize(
    "params",
    [
        {"min_price": 30, "max_price": 10},
        {"min_price": -1},
        {"category": ""},
        {"exclude": "P1,bad\tid"},
    ],
)
def test_bad_filters_answer_422_json(stack: Stack, params: dict[str, str | int]) -> None:
    r = _get(stack, **params)
    assert r.status_code == 422
    assert r.json()["detail"]


def test_a_filter_nothing_passes_answers_an_empty_list(stack: Stack) -> None:
    r = _get(stack, category="no-such-category")
    assert r.status_code == 200 and r.json() == []


def test_explain_adds_seeds_and_contributions_that_sum_to_the_score(stack: Stack) -> None:
    plain = _get(stack, k=5).json()
    assert all("explanation" not in item for item in plain)
    items = _get(stack, k=5, explain="true").json()
    assert [i["product"] for i in items] == [i["product"] for i in plain]
    for item in items:
        explanation = item["explanation"]
        total = sum(explanation["contributions"].values()) + explanation["bias"]
        assert abs(total - item["score"]) < 1e-6
        assert "cand_score" in explanation["contributions"]
        if item["reason"].startswith("similar_to:"):
            assert explanation["seed"] == item["reason"].split(":", 1)[1]
