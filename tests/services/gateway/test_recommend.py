"""GET /recommend load shedding, in-process against real stand-in stages: with the pipeline full,
the next request is answered at once from the popular list (and logged as served, degraded), and
every request gives its place back however it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from services.gateway.admission import InFlightLimit
from shared.schemas.serving import (
    CandidateListPayload,
    CandidateResponse,
    PopularResponse,
    RankResponse,
    RecommendedItem,
)
from shared.served import ServedList, ServedLog
from tests.services.gateway.conftest import gateway_client, serving

VERSION = 3
POPULAR = [
    RecommendedItem(product=f"P{i}", score=1.0, price=1.0, age=None, reason="popular")
    for i in range(5)
]
RANKED = [RecommendedItem(product="R1", score=2.0, price=1.0, age=None, reason="similar_to:P1")]


class HeldStages:
    """Candidate and ranker stages in one stand-in service. /candidates holds every request
    until `release` is set, so that a test decides how many are inside the pipeline; the user
    `broken` gets a 500 at once."""

    def __init__(self, popular: bool) -> None:
        self.release = asyncio.Event()
        self.held = 0
        self._arrived = asyncio.Condition()
        self.app = FastAPI()

        @self.app.get("/popular", response_model=None)
        async def popular_list() -> PopularResponse | JSONResponse:
            if not popular:  # no model loaded yet: the gateway has nothing to cache
                return JSONResponse({"detail": "no model"}, status_code=503)
            return PopularResponse(version=VERSION, items=POPULAR)

        @self.app.post("/candidates", response_model=None)
        async def candidates(body: dict[str, Any]) -> CandidateResponse | JSONResponse:
            if body["user"] == "broken":
                return JSONResponse({"detail": "failing"}, status_code=500)
            async with self._arrived:
                self.held += 1
                self._arrived.notify_all()
            await self.release.wait()
            one = CandidateListPayload(
                products=["R1"], scores=[1.0], similarity=[0.0], reasons=["similar_to:P1"]
            )
            return CandidateResponse(
                user=body["user"], version=VERSION, known_user=True, candidates=one
            )

        @self.app.post("/rank")
        async def rank(body: dict[str, Any]) -> RankResponse:
            return RankResponse(user=body["user"], version=VERSION, items=RANKED)

    async def until_held(self, n: int) -> None:
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.held >= n)


Scenario = Callable[[FastAPI, httpx.AsyncClient, HeldStages], Awaitable[None]]


def run(make_gateway: Callable[..., FastAPI], limit: int, popular: bool, test: Scenario) -> None:
    """`test` against a gateway allowing `limit` requests in flight, its stages `HeldStages`."""

    async def go() -> None:
        stages = HeldStages(popular)
        async with serving(stages.app) as url:
            try:
                app = make_gateway(
                    GATEWAY_CANDIDATE_URL=url,
                    GATEWAY_RANKER_URL=url,
                    GATEWAY_MAX_IN_FLIGHT=str(limit),
                )
                async with gateway_client(app) as client:
                    if popular:
                        async with asyncio.timeout(30):  # a bound on a hang, not a timing check
                            while app.state.popular.current is None:
                                await asyncio.sleep(0.01)
                    await test(app, client, stages)
            finally:  # the stand-in cannot stop while it holds requests
                stages.release.set()

    asyncio.run(go())


def overload_count() -> float:
    sample = REGISTRY.get_sample_value(
        "recsys_degraded_total", {"service": "gateway", "mode": "overload"}
    )
    return sample or 0.0


def in_flight(app: FastAPI) -> int:
    admission: InFlightLimit = app.state.admission
    return admission.in_flight


async def get(client: httpx.AsyncClient, user: str, k: int = 10) -> httpx.Response:
    return await client.get("/recommend", params={"user": user, "k": str(k)})


def test_past_the_limit_a_request_gets_popular_items_at_once(
    make_gateway: Callable[..., FastAPI], redis_client: redis.Redis
) -> None:
    async def test(app: FastAPI, client: httpx.AsyncClient, stages: HeldStages) -> None:
        held = [asyncio.create_task(get(client, f"U{i}")) for i in range(2)]
        await stages.until_held(2)
        assert in_flight(app) == 2
        assert REGISTRY.get_sample_value("recsys_gateway_pipeline_in_flight") == 2  # the gauge
        before = overload_count()

        shed = await get(client, "U9", k=3)  # answered while the other two are still held
        assert shed.status_code == 200
        assert shed.headers["X-Degraded"] == "overload"
        assert shed.headers["X-Model-Version"] == str(VERSION)
        assert [i["product"] for i in shed.json()] == ["P0", "P1", "P2"]
        assert stages.held == 2  # it never reached the candidate stage
        assert overload_count() == before + 1
        # logged like every answer: attribution finds it, the stream has it as degraded
        served: ServedLog = app.state.served
        rid = shed.headers["X-Request-ID"]
        found, _ = await served.attribute("U9", "P1", rid)
        assert (found.how, found.position, found.version, found.arm) == ("request_id", 2, 3, None)
        latest: Any = redis_client.xrevrange(served.stream, count=1)  # annotations vary by release
        ((_, fields),) = latest
        logged = ServedList.model_validate_json(fields[b"served"])
        assert (logged.id, logged.user, logged.degraded) == (rid, "U9", "overload")
        assert [i.product for i in logged.items] == ["P0", "P1", "P2"]

        stages.release.set()
        for answer in await asyncio.gather(*held):
            assert answer.status_code == 200 and "X-Degraded" not in answer.headers
            assert [i["product"] for i in answer.json()] == ["R1"]
        assert in_flight(app) == 0
        again = await get(client, "U10")  # places free again: the full pipeline answers
        assert again.status_code == 200 and "X-Degraded" not in again.headers
        assert [i["product"] for i in again.json()] == ["R1"]
        assert in_flight(app) == 0 and overload_count() == before + 1

    run(make_gateway, limit=2, popular=True, test=test)


def test_shed_with_nothing_cached_is_503_json_with_retry_after(
    make_gateway: Callable[..., FastAPI],
) -> None:
    async def test(app: FastAPI, client: httpx.AsyncClient, stages: HeldStages) -> None:
        held = asyncio.create_task(get(client, "U1"))
        await stages.until_held(1)
        before = overload_count()
        shed = await get(client, "U2")
        assert shed.status_code == 503
        assert shed.headers["Retry-After"] == "1" and "X-Degraded" not in shed.headers
        assert "overloaded" in shed.json()["detail"]
        assert overload_count() == before + 1
        stages.release.set()
        assert (await held).status_code == 200 and in_flight(app) == 0

    run(make_gateway, limit=1, popular=False, test=test)


def test_every_way_out_of_the_pipeline_gives_the_place_back(
    make_gateway: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test(app: FastAPI, client: httpx.AsyncClient, stages: HeldStages) -> None:
        # A stage error: the candidate stage answers 500, the gateway falls back.
        failed = await get(client, "broken")
        assert failed.headers["X-Degraded"] == "candidate" and in_flight(app) == 0

        # Cancellation: the request is dropped while it waits for the candidate stage.
        waiting = asyncio.create_task(get(client, "U1"))
        await stages.until_held(1)
        assert in_flight(app) == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert in_flight(app) == 0

        # A bug: anything else raised inside the pipeline.
        async def boom(*args: object, **kwargs: object) -> bytes:
            raise RuntimeError("a bug in the pipeline")

        monkeypatch.setattr(app.state.stages.candidate, "fetch", boom)
        with pytest.raises(RuntimeError, match="a bug"):
            await get(client, "U2")
        assert in_flight(app) == 0

    run(make_gateway, limit=1, popular=True, test=test)
