"""What a listing answer shows is the gateway's live catalog: a stage that filtered with an older
view of a price (its own mirror a poll behind) cannot put a product past the request's price
bound or category into the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI

from tests.services.gateway.conftest import gateway_client, serving
from tests.services.gateway.test_recommend import HeldStages


def test_the_live_price_and_category_are_checked_against_the_filters(
    make_gateway: Callable[..., FastAPI],
) -> None:
    async def go() -> None:
        stages = HeldStages(popular=True)
        stages.release.set()  # answers at once; its candidate R1 is priced 1.0 by the model
        async with serving(stages.app) as url:
            app = make_gateway(GATEWAY_CANDIDATE_URL=url, GATEWAY_RANKER_URL=url)
            async with gateway_client(app) as client:

                async def shown(**params: str) -> list[str]:
                    r = await client.get("/recommend", params={"user": "U1", **params})
                    assert r.status_code == 200, r.text
                    return [i["product"] for i in r.json()]

                assert await shown(max_price="100") == ["R1"]
                r = await client.put("/items/R1", json={"price": 500.0, "category": "lamps"})
                assert r.status_code == 200, r.text
                async with asyncio.timeout(30):  # a bound on a hang, not a timing check
                    while "R1" not in app.state.catalog.items:
                        await asyncio.sleep(0.01)
                # the stand-in stage still proposes R1 whatever the filters (its view is old)
                assert await shown() == ["R1"]
                assert await shown(max_price="100") == []
                assert await shown(min_price="400") == ["R1"]
                assert await shown(category="mugs") == []
                assert await shown(category="lamps") == ["R1"]

    asyncio.run(go())


def test_an_answer_without_filters_is_the_overlay_alone(
    make_gateway: Callable[..., FastAPI],
) -> None:
    async def go() -> None:
        stages = HeldStages(popular=True)
        stages.release.set()
        async with serving(stages.app) as url:
            app = make_gateway(GATEWAY_CANDIDATE_URL=url, GATEWAY_RANKER_URL=url)
            async with gateway_client(app) as client:
                r = await client.put("/items/R1", json={"title": "Lamp", "price": 2.5})
                assert r.status_code == 200, r.text
                async with asyncio.timeout(30):
                    while "R1" not in app.state.catalog.items:
                        await asyncio.sleep(0.01)
                items = (await client.get("/recommend", params={"user": "U1"})).json()
                assert [(i["product"], i["title"], i["price"]) for i in items] == [
                    ("R1", "Lamp", 2.5)
                ]

    asyncio.run(go())
