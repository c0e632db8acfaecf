"""Similar items and trending against real processes: filters held, reasons given, unknown
products answered 404 with a body."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from services.launcher.stack import Stack

pytestmark = pytest.mark.integration


def _get(stack: Stack, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{stack.gateway_url}{path}", params=params, timeout=10)


def test_similar_items_of_a_product(stack: Stack) -> None:
    product = str(_get(stack, "/recommend", user="U2").json()[0]["product"])
    r = _get(stack, f"/items/{quote(product, safe='')}/similar", k=20)
    assert r.status_code == 200, r.text
    items = r.json()
    assert len(items) == 20 and int(r.headers["X-Model-Version"]) >= 1
    assert product not in {i["product"] for i in items}
    reasons = {i["reason"].split(":", 1)[0] for i in items}
    assert reasons <= {"together_with", "similar_to"} and "together_with" in reasons
    assert all(i["reason"].endswith(f":{product}") for i in items)
    assert all(i["title"] for i in items)
    category = items[0]["category"]
    same = _get(stack, f"/items/{quote(product, safe='')}/similar", k=10, category=category)
    assert same.status_code == 200 and same.json()
    assert {i["category"] for i in same.json()} == {category}
    prices = sorted(i["price"] for i in items)
    cheap = _get(stack, f"/items/{product}/similar", k=10, max_price=prices[len(prices) // 2])
    assert cheap.status_code == 200 and cheap.json()
    assert all(i["price"] <= prices[len(prices) // 2] for i in cheap.json())


@pytest.mark.parametrize("product", ["no-such-product", "zoë B@x"])
def test_similar_items_of_an_unknown_product_is_404(stack: Stack, product: str) -> None:
    r = _get(stack, f"/items/{quote(product, safe='')}/similar")
    assert r.status_code == 404 and product in r.json()["detail"]


@pytest.mark.parametrize(
    "params", [{"k": 0}, {"k": 101}, {"min_price": 5, "max_price": 1}, {"category": "a\x01"}]
)
def test_similar_bad_query_is_422(stack: Stack, params: dict[str, object]) -> None:
    product = str(_get(stack, "/recommend", user="U2").json()[0]["product"])
    r = _get(stack, f"/items/{product}/similar", **params)
    assert r.status_code == 422 and r.json()["detail"]


def test_trending_follows_what_users_take_now(stack: Stack) -> None:
    before = _get(stack, "/popular", k=50, window="1h")
    assert before.status_code == 200 and len(before.json()) == 50
    assert int(before.headers["X-Model-Version"]) >= 1
    shown = {i["product"] for i in before.json()}
    # a product from the long tail, suddenly bought by many
    tail = next(
        str(i["product"])
        for u in ("U3", "U4", "U5", "U6")
        for i in _get(stack, "/recommend", user=u, k=50).json()
        if i["product"] not in shown
    )
    for n in range(30):
        event = {"user": f"trend-{n}", "product": tail, "type": "purchase"}
        assert httpx.post(f"{stack.gateway_url}/events", json=event, timeout=10).status_code == 202
    after = _get(stack, "/popular", k=10, window="1h").json()
    assert after[0]["product"] == tail and after[0]["reason"] == "trending"
    assert after[0]["score"] > 100  # 30 purchases of weight 5, barely decayed
    category = after[0]["category"]
    same = _get(stack, "/popular", k=10, window="30d", category=category).json()
    assert same and {i["category"] for i in same} == {category}
    assert same[0]["product"] == tail
    assert tail not in {i["product"] for i in _get(stack, "/popular", exclude=tail).json()}


@pytest.mark.parametrize("params", [{"window": "2h"}, {"k": 0}, {"min_price": -1}])
def test_trending_bad_query_is_422(stack: Stack, params: dict[str, object]) -> None:
    r = _get(stack, "/popular", **params)
    assert r.status_code == 422 and r.json()["detail"]
