"""Business rules against real processes: the diversity cap holds in 1,000 random requests;
boost, bury and pins act and say so; conflicting rules answer 422 saying which."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
import pytest

from services.launcher.stack import Stack

pytestmark = pytest.mark.integration


def _get(stack: Stack, **params: Any) -> httpx.Response:
    return httpx.get(f"{stack.gateway_url}/recommend", params=params, timeout=10)


def test_the_category_cap_holds_in_1000_random_requests(stack: Stack) -> None:
    rng = random.Random(7)

    async def run() -> list[tuple[int, list[dict[str, Any]]]]:
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:

            async def one() -> tuple[int, list[dict[str, Any]]]:
                cap = rng.randint(1, 3)
                params: dict[str, Any] = {
                    "user": f"U{rng.randint(1, 300)}",
                    "k": rng.randint(5, 30),
                    "max_per_category": cap,
                }
                if rng.random() < 0.3:
                    params["diversity"] = round(rng.random(), 2)
                async with limit:
                    r = await client.get("/recommend", params=params)
                assert r.status_code == 200, r.text
                return cap, r.json()

            return await asyncio.gather(*(one() for _ in range(1000)))

    answers = asyncio.run(run())
    for cap, items in answers:
        counts = Counter(i["category"] for i in items if i["category"] is not None)
        assert max(counts.values(), default=0) <= cap, (cap, counts)
    assert sum(len(items) for _, items in answers) > 5000  # lists, not empty answers


def test_boost_bury_and_pins_act_and_say_so(stack: Stack) -> None:
    plain = _get(stack, user="U8", k=10).json()
    top_cat = plain[0]["category"]
    buried = _get(stack, user="U8", k=100, bury_category=top_cat).json()
    cats = [i["category"] for i in buried]
    assert top_cat not in cats[:10]  # behind every other category now
    first = cats.index(top_cat)
    assert all(c == top_cat for c in cats[first:])
    assert all(i["reason"].endswith(";buried") for i in buried[first:])
    product = plain[5]["product"]
    boosted = _get(stack, user="U8", k=10, boost_product=product, explain="true").json()
    assert boosted[0]["product"] == product and boosted[0]["reason"].endswith(";boosted")
    assert boosted[0]["explanation"]["rules"]["applied"] == ["boosted"]
    other = _get(stack, user="U9", k=10).json()[0]["product"]
    pinned = _get(stack, user="U8", k=10, pin=[f"{other}@3", f"{plain[9]['product']}@1"]).json()
    assert pinned[2]["product"] == other and pinned[0]["product"] == plain[9]["product"]
    assert len(pinned) == 10 and len({i["product"] for i in pinned}) == 10
    several = _get(stack, user="U8", k=20, category=[plain[0]["category"], plain[1]["category"]])
    assert {i["category"] for i in several.json()} <= {plain[0]["category"], plain[1]["category"]}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"boost_category": "x", "bury_category": "x"}, "both boosted and buried"),
        ({"k": 5, "pin": "P1@6"}, "outside the list of k=5"),
        ({"pin": ["P1@1", "P2@1"]}, "same position"),
        ({"pin": "P1"}, "PRODUCT@POSITION"),
        ({"max_per_category": 0}, "max_per_category"),
        ({"diversity": 2}, "diversity"),
    ],
)
def test_conflicting_rules_are_422_saying_which(
    stack: Stack, params: dict[str, Any], says: str
) -> None:
    r = _get(stack, user="U1", **params)
    assert r.status_code == 422 and says in r.text, r.text


def test_a_batch_takes_rules_too(stack: Stack) -> None:
    body = {"users": ["U1", "U2", "U3"], "k": 8, "rules": {"max_per_category": 1}}
    r = httpx.post(f"{stack.gateway_url}/recommend/batch", json=body, timeout=30)
    assert r.status_code == 200
    for line in r.text.splitlines():
        items = httpx.Response(200, content=line).json()["items"]
        cats = [i["category"] for i in items]
        assert len(cats) == len(set(cats))
