"""Business rules against real processes: the diversity cap holds in 1,000 random requests;
boost, bury and pins act and say so; conflicting rules answer 422 saying which."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from services.launcher.stack import Stack
from shared.client import AsyncRecsysClient, InvalidRequestError, RecsysClient
from shared.live_catalog import ItemPatch
from shared.schemas.rules import Rules
from shared.schemas.serving import BatchRequest, RecommendedItem

pytestmark = pytest.mark.integration


def test_the_category_cap_holds_in_1000_random_requests(stack: Stack) -> None:
    rng = random.Random(7)

    async def run() -> list[tuple[int, list[RecommendedItem]]]:
        limit = asyncio.Semaphore(16)
        async with AsyncRecsysClient(stack.gateway_url, timeout=30) as client:

            async def one() -> tuple[int, list[RecommendedItem]]:
                cap = rng.randint(1, 3)
                user, k = f"U{rng.randint(1, 300)}", rng.randint(5, 30)
                diversity = round(rng.random(), 2) if rng.random() < 0.3 else None
                async with limit:
                    answer = await client.recommend(
                        user, k, max_per_category=cap, diversity=diversity
                    )
                return cap, answer.items

            return await asyncio.gather(*(one() for _ in range(1000)))

    answers = asyncio.run(run())
    for cap, items in answers:
        counts = Counter(i.category for i in items if i.category is not None)
        assert max(counts.values(), default=0) <= cap, (cap, counts)
    assert sum(len(items) for _, items in answers) > 5000  # lists, not empty answers


def test_boost_bury_and_pins_act_and_say_so(api: RecsysClient) -> None:
    plain = api.recommend("U8", k=10).items
    top_cat = plain[0].category
    assert top_cat is not None
    buried = api.recommend("U8", k=100, bury_category=[top_cat]).items
    cats = [i.category for i in buried]
    assert top_cat not in cats[:10]  # behind every other category now
    first = cats.index(top_cat)
    assert all(c == top_cat for c in cats[first:])
    assert all(i.reason.endswith(";buried") for i in buried[first:])
    product = plain[5].product
    boosted = api.recommend("U8", k=10, boost_product=[product], explain=True).items
    assert boosted[0].product == product and boosted[0].reason.endswith(";boosted")
    explanation = boosted[0].explanation
    assert explanation is not None and explanation.rules is not None
    assert explanation.rules.applied == ["boosted"]
    other = api.recommend("U9", k=10).items[0].product
    pinned = api.recommend("U8", k=10, pin={other: 3, plain[9].product: 1}).items
    assert pinned[2].product == other and pinned[0].product == plain[9].product
    assert len(pinned) == 10 and len({i.product for i in pinned}) == 10
    two = [c for c in (plain[0].category, plain[1].category) if c is not None]
    several = api.recommend("U8", k=20, category=two).items
    assert {i.category for i in several} <= {plain[0].category, plain[1].category}


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ({"boost_category": ["x"], "bury_category": ["x"]}, "both boosted and buried"),
        ({"k": 5, "pin": {"P1": 6}}, "outside the list of k=5"),
        ({"pin": {"P1": 1, "P2": 1}}, "same position"),
        ({"max_per_category": 0}, "max_per_category"),
        ({"diversity": 2}, "diversity"),
    ],
)
def test_conflicting_rules_are_422_saying_which(
    api: RecsysClient, rules: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        api.recommend("U1", **rules)
    assert says in str(refused.value.detail), refused.value.detail


def test_a_pin_without_a_position_is_422_saying_how(stack: Stack) -> None:
    # raw httpx: the client's pins are {product: position} and cannot leave the position out
    params = {"user": "U1", "pin": "P1"}
    r = httpx.get(f"{stack.gateway_url}/recommend", params=params, timeout=10)
    assert r.status_code == 422 and "PRODUCT@POSITION" in r.text, r.text


def test_a_batch_takes_rules_too(stack: Stack) -> None:
    request = BatchRequest(users=["U1", "U2", "U3"], k=8, rules=Rules(max_per_category=1))
    with RecsysClient(stack.gateway_url, timeout=30) as api:
        lines = api.recommend_batch(request)
    assert [line.user for line in lines] == ["U1", "U2", "U3"]
    for line in lines:
        cats = [i.category for i in line.items]
        assert len(cats) == len(set(cats))


def test_the_cap_counts_the_category_the_live_catalog_says(stack: Stack) -> None:
    """Two products moved into one new category since training: a cap of one shows one of
    them (the rules read the live category, as the answer shows it)."""
    with RecsysClient(stack.gateway_url, timeout=30) as api:
        shown = api.recommend("U5", k=10).items
        moved = [shown[0], shown[1]]
        try:
            for item in moved:
                api.patch_item(item.product, ItemPatch(category="relabelled"))

            def live() -> bool:
                got = {i.product: i.category for i in api.recommend("U5", k=10).items}
                return all(got.get(i.product) == "relabelled" for i in moved)

            deadline = time.monotonic() + 10
            while not live():
                assert time.monotonic() < deadline, "the new category never showed"
                time.sleep(0.05)
            capped = api.recommend("U5", k=10, max_per_category=1).items
            cats = [i.category for i in capped]
            assert cats.count("relabelled") == 1, cats
        finally:
            for item in moved:
                api.patch_item(item.product, ItemPatch(category=item.category))
