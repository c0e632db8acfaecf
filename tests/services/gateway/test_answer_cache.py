"""The gateway's answer cache, in-process against real stand-in stages on the session Redis: a
user's answer is served again without the stages while the served version and the user's state
are those it came from, and computed again after any of the user's writes, a version move, its
age limit, or another question."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import redis
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.gateway.answer_cache import SETTLE_SECONDS, AnswerCache, Stamp, cache_key
from services.gateway.pipeline import Answer
from shared.live_catalog import CatalogMirror
from shared.registry import current_version_key
from shared.schemas.serving import (
    CandidateListPayload,
    CandidateResponse,
    ItemFilters,
    PopularResponse,
    RankResponse,
    RecommendedItem,
)
from shared.served import ServedLog
from shared.settings import get_common_settings
from shared.stats import answer_cache
from tests.services.gateway.conftest import gateway_client, serving


def item(product: str) -> RecommendedItem:
    return RecommendedItem(product=product, score=1.0, price=2.0, age=None, reason="popular")


class CountingStages:
    """Candidate and ranker in one stand-in: answers with `version`, the n-th list of a user
    `R<n>` (so a recomputed answer differs from a kept one), and counts the calls; the ranker
    fails while `rank_fails`."""

    def __init__(self) -> None:
        self.version = 1
        self.calls = 0
        self.rank_fails = False
        self.app = FastAPI()

        @self.app.get("/popular")
        async def popular_list() -> PopularResponse:
            return PopularResponse(version=self.version, items=[item("P0")])

        @self.app.post("/candidates")
        async def candidates(body: dict[str, Any]) -> CandidateResponse:
            self.calls += 1
            one = CandidateListPayload(
                products=[f"R{self.calls}"], scores=[1.0], similarity=[0.0], reasons=["popular"]
            )
            return CandidateResponse(
                user=body["user"], version=self.version, known_user=True, candidates=one
            )

        @self.app.post("/rank", response_model=None)
        async def rank(body: dict[str, Any]) -> RankResponse | JSONResponse:
            if self.rank_fails:
                return JSONResponse({"detail": "down"}, status_code=500)
            products = body["stage_one"]["candidates"]["products"]
            return RankResponse(
                user=body["user"], version=self.version, items=[item(p) for p in products]
            )


Scenario = Callable[[FastAPI, httpx.AsyncClient, CountingStages, redis.Redis], Awaitable[None]]


def run(
    make_gateway: Callable[..., FastAPI], redis_client: redis.Redis, test: Scenario, **env: str
) -> None:
    async def go() -> None:
        stages = CountingStages()
        async with serving(stages.app) as url:
            app = make_gateway(GATEWAY_CANDIDATE_URL=url, GATEWAY_RANKER_URL=url, **env)
            prefix = get_common_settings().key_prefix
            redis_client.set(current_version_key(prefix), stages.version)
            async with gateway_client(app) as client:
                await test(app, client, stages, redis_client)

    asyncio.run(go())


async def products(client: httpx.AsyncClient, user: str, **params: str) -> list[str]:
    answer = await client.get("/recommend", params={"user": user, **params})
    assert answer.status_code == 200, answer.text
    return [i["product"] for i in answer.json()]


async def counts(client: httpx.AsyncClient) -> dict[str, float]:
    """The cache's counters as the gateway's /metrics shows them."""
    return answer_cache((await client.get("/metrics")).text)


def test_an_answer_is_served_again_until_the_user_acts(
    make_gateway: Callable[..., FastAPI], redis_client: redis.Redis
) -> None:
    async def test(
        app: FastAPI, client: httpx.AsyncClient, stages: CountingStages, r: redis.Redis
    ) -> None:
        before = await counts(client)
        first = await client.get("/recommend", params={"user": "U1"})
        assert "X-Answer-Cache" not in first.headers
        again = await client.get("/recommend", params={"user": "U1"})
        assert again.headers["X-Answer-Cache"] == "hit"  # kept: the stages were not asked
        assert again.json() == first.json() and again.json()[0]["product"] == "R1"
        after = await counts(client)
        assert stages.calls == 1
        assert (after["hit"] - before["hit"], after["miss"] - before["miss"]) == (1, 1)
        # every answer is logged as served, the kept one too
        served: ServedLog = app.state.served
        assert r.xlen(served.stream) == 2

        event = {"user": "U1", "product": "R1", "type": "view"}
        assert (await client.post("/events", json=event)).status_code == 202
        assert await products(client, "U1") == ["R2"]  # the event changed the user's state
        assert await products(client, "U1") == ["R2"]
        assert stages.calls == 2

        # with explanations: computed each time, never kept
        for _ in range(2):
            explained = await client.get("/recommend", params={"user": "U9", "explain": "true"})
            assert "X-Answer-Cache" not in explained.headers
        assert stages.calls == 4

        # another question is another answer; another user too
        assert await products(client, "U1", k="5") == ["R5"]
        assert await products(client, "U1", category="X") == []  # R6, filtered by the gateway
        assert await products(client, "U2") == ["R7"]
        assert stages.calls == 7

        # a profile write changes what a cold start answers: computed again
        put = await client.put("/users/U1", json={"segment": "b2b"})
        assert put.status_code == 200, put.text
        assert await products(client, "U1") == ["R8"]
        assert stages.calls == 8

    run(make_gateway, redis_client, test)


def test_a_version_move_a_degraded_answer_and_age_are_not_served_again(
    make_gateway: Callable[..., FastAPI], redis_client: redis.Redis
) -> None:
    async def test(
        app: FastAPI, client: httpx.AsyncClient, stages: CountingStages, r: redis.Redis
    ) -> None:
        assert await products(client, "U1") == ["R1"]
        stages.version = 2  # the stages swapped; `current` moved
        r.set(current_version_key(get_common_settings().key_prefix), 2)
        answer = await client.get("/recommend", params={"user": "U1"})
        assert answer.headers["X-Model-Version"] == "2"
        assert [i["product"] for i in answer.json()] == ["R2"]

        stages.rank_fails = True  # candidate order, degraded: never kept
        for _ in range(2):
            degraded = await client.get("/recommend", params={"user": "U3"})
            assert degraded.headers["X-Degraded"] == "ranker"
        assert stages.calls == 4
        stages.rank_fails = False

        assert await products(client, "U4") == ["R5"]
        await asyncio.sleep(0.6)  # past GATEWAY_ANSWER_CACHE_SECONDS below
        assert await products(client, "U4") == ["R6"]

    run(make_gateway, redis_client, test, GATEWAY_ANSWER_CACHE_SECONDS="0.5")


async def changed(read: Callable[[], int], since: int) -> None:
    """Until the mirror's counter `read` moves past `since` (its poll: 0.2 s)."""
    for _ in range(50):
        if read() > since:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway's catalog mirror did not apply the write")


def test_a_product_opened_in_the_live_catalog_is_not_missed(
    make_gateway: Callable[..., FastAPI], redis_client: redis.Redis
) -> None:
    async def test(
        app: FastAPI, client: httpx.AsyncClient, stages: CountingStages, r: redis.Redis
    ) -> None:
        catalog: CatalogMirror = app.state.catalog
        await asyncio.wait_for(catalog.loaded.wait(), 5)
        assert await products(client, "U1") == ["R1"]
        assert await products(client, "U1") == ["R1"]
        opened = catalog.opened
        new = {"title": "a new lamp", "price": 3.0}
        assert (await client.put("/items/NEW1", json=new)).status_code == 200
        await changed(lambda: catalog.opened, opened)
        # computed again (the stages may now propose it), and not kept while their own
        # mirrors may still be a poll behind this one
        assert await products(client, "U1") == ["R2"]
        assert await products(client, "U1") == ["R3"]
        await asyncio.sleep(SETTLE_SECONDS)
        assert await products(client, "U1") == ["R4"]
        assert await products(client, "U1") == ["R4"]

        # a new price, a sold-out product: nothing opens (the live catalog is overlaid on kept
        # answers); available again, deleted and put again: it opens again
        for body, opens in [
            ({**new, "price": 2.0}, False),
            ({**new, "available": False}, False),
            (new, True),
        ]:
            generation, opened = catalog.generation, catalog.opened
            assert (await client.put("/items/NEW1", json=body)).status_code == 200
            await changed(lambda: catalog.generation, generation)
            assert catalog.opened == opened + opens
        generation = catalog.generation
        assert (await client.delete("/items/NEW1")).status_code == 200
        await changed(lambda: catalog.generation, generation)
        opened = catalog.opened
        assert (await client.put("/items/NEW1", json=new)).status_code == 200
        await changed(lambda: catalog.opened, opened)

    run(make_gateway, redis_client, test)


def test_off_when_its_age_limit_is_zero(
    make_gateway: Callable[..., FastAPI], redis_client: redis.Redis
) -> None:
    async def test(
        app: FastAPI, client: httpx.AsyncClient, stages: CountingStages, r: redis.Redis
    ) -> None:
        assert await products(client, "U1") == ["R1"]
        assert await products(client, "U1") == ["R2"]
        assert stages.calls == 2 and len(app.state.answers) == 0

    run(make_gateway, redis_client, test, GATEWAY_ANSWER_CACHE_SECONDS="0")


def test_items_bound_it_least_recently_used_out_first_and_an_erased_user_forgotten() -> None:
    cache = AnswerCache(None, "p", CatalogMirror(None, "p"), items=4, seconds=60)  # type: ignore[arg-type]
    stamp = Stamp(version=1, state=b"t", catalog=0)
    keys = [cache_key(u, 10, ItemFilters(), None, None) for u in ("A", "B", "C")]
    for key in keys[:2]:
        cache.put(key, stamp, Answer([item(key.user)] * 2, 1))
    assert cache.get(keys[0], stamp) is not None  # A used last: B goes first
    cache.put(keys[2], stamp, Answer([item("C")] * 2, 1))
    assert (len(cache), cache.held) == (2, 4) and cache.get(keys[1], stamp) is None
    cache.put(keys[2], stamp, Answer([item("C")] * 3, 1))  # kept again, larger: A goes
    assert (len(cache), cache.held) == (1, 3) and cache.get(keys[0], stamp) is None
    cache.put(keys[0], stamp, Answer([item("A")] * 5, 1))  # alone past the bound: not kept
    assert (len(cache), cache.held) == (1, 3)
    assert cache.get(keys[2], Stamp(version=1, state=b"other", catalog=0)) is None  # and dropped
    assert (len(cache), cache.held) == (0, 0)
    cache.put(keys[0], stamp, Answer([item("A")], 2))  # not the version the stamp expects
    assert len(cache) == 0
    cache.put(keys[2], stamp, Answer([item("C")], 1))
    cache.forget("C")
    assert (len(cache), cache.held) == (0, 0)
