"""Similar items and trending against real processes: filters held, reasons given, unknown
products answered 404 with a body."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.launcher.stack import Stack
from shared.client import InvalidRequestError, NotFoundError, RecsysClient
from shared.schemas.serving import EventIn

pytestmark = pytest.mark.integration


def test_similar_items_of_a_product(api: RecsysClient) -> None:
    product = api.recommend("U2").items[0].product
    r = api.similar(product, k=20)
    items = r.items
    assert len(items) == 20 and r.version is not None and r.version >= 1
    assert product not in {i.product for i in items}
    reasons = {i.reason.split(":", 1)[0] for i in items}
    assert reasons <= {"together_with", "similar_to"} and "together_with" in reasons
    assert all(i.reason.endswith(f":{product}") for i in items)
    assert all(i.title for i in items)
    category = items[0].category
    assert category is not None
    same = api.similar(product, k=10, category=category).items
    assert same and {i.category for i in same} == {category}
    prices = sorted(i.price for i in items if i.price is not None)
    assert len(prices) == len(items)
    cheap = api.similar(product, k=10, max_price=prices[len(prices) // 2]).items
    assert cheap and all(i.price is not None and i.price <= prices[len(prices) // 2] for i in cheap)


@pytest.mark.parametrize("product", ["no-such-product", "zoë B@x"])
def test_similar_items_of_an_unknown_product_is_404(api: RecsysClient, product: str) -> None:
    with pytest.raises(NotFoundError) as missing:
        api.similar(product)
    assert product in str(missing.value.detail)


@pytest.mark.parametrize(
    "params", [{"k": 0}, {"k": 101}, {"min_price": 5, "max_price": 1}, {"category": "a\x01"}]
)
def test_similar_bad_query_is_422(api: RecsysClient, params: dict[str, Any]) -> None:
    product = api.recommend("U2").items[0].product
    with pytest.raises(InvalidRequestError) as refused:
        api.similar(product, **params)
    assert refused.value.detail


def test_trending_follows_what_users_take_now(api: RecsysClient) -> None:
    before = api.popular(k=50, window="1h")
    assert len(before.items) == 50
    assert before.version is not None and before.version >= 1
    shown = {i.product for i in before.items}
    # a product from the long tail, suddenly bought by many
    tail = next(
        i.product
        for u in ("U3", "U4", "U5", "U6")
        for i in api.recommend(u, k=50).items
        if i.product not in shown
    )
    for n in range(30):
        api.send_event(EventIn(user=f"trend-{n}", product=tail, type="purchase"))
    after = api.popular(k=10, window="1h").items
    assert after[0].product == tail and after[0].reason == "trending"
    assert after[0].score > 100  # 30 purchases of weight 5, barely decayed
    category = after[0].category
    assert category is not None
    same = api.popular(k=10, window="30d", category=category).items
    assert same and {i.category for i in same} == {category}
    assert same[0].product == tail
    assert tail not in {i.product for i in api.popular(exclude=[tail]).items}


@pytest.mark.parametrize("params", [{"k": 0}, {"min_price": -1}])
def test_trending_bad_query_is_422(api: RecsysClient, params: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        api.popular(**params)
    assert refused.value.detail


def test_trending_unknown_window_is_422(stack: Stack) -> None:
    # raw httpx: the client's window is typed (1h, 1d, 7d, 30d) and cannot say "2h"
    r = httpx.get(f"{stack.gateway_url}/popular", params={"window": "2h"}, timeout=10)
    assert r.status_code == 422 and r.json()["detail"]
