"""GET /recommend with the ranker unreachable: stage one's order, flagged, with the titles and
prices the candidate stage tells through POST /items, and without them when it cannot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from shared.schemas.serving import (
    CandidateListPayload,
    CandidateResponse,
    CatalogItem,
    ItemsRequest,
    ItemsResponse,
)
from tests.services.gateway.conftest import gateway_client, serving

VERSION = 4
CATALOG = {
    "A1": CatalogItem(product="A1", title="Red mug", price=2.5, category="kitchen"),
    "B2": CatalogItem(product="B2", title="Blue mug", price=3.0, category="kitchen"),
}


def candidate_stage(items_mode: str) -> tuple[FastAPI, list[list[str]]]:
    """A candidate stage proposing C3, A1, B2 (C3 unknown to its catalog); /items answers as
    `items_mode` says: "ok", "error" (500) or "other_version". Returns it and the lookups."""
    app, asked = FastAPI(), []

    @app.post("/candidates")
    async def candidates(body: dict[str, Any]) -> CandidateResponse:
        columns = CandidateListPayload(
            products=["C3", "A1", "B2"],
            scores=[0.9, 0.8, 0.7],
            similarity=[0.0, 0.0, 0.0],
            reasons=["popular", "similar_to:X", "similar_to:X"],
        )
        return CandidateResponse(user=body["user"], version=VERSION, known_user=True,
                                 candidates=columns, user_age=31.0)  # fmt: skip

    @app.post("/items", response_model=None)
    async def items(body: ItemsRequest) -> ItemsResponse | JSONResponse:
        asked.append(body.products)
        if items_mode == "error":
            return JSONResponse({"detail": "failing"}, status_code=500)
        version = VERSION + 1 if items_mode == "other_version" else VERSION
        return ItemsResponse(
            version=version, items=[CATALOG[p] for p in body.products if p in CATALOG]
        )

    return app, asked


def recommend(
    make_gateway: Callable[..., FastAPI], items_mode: str, k: int
) -> tuple[Any, list[list[str]]]:
    async def go() -> tuple[Any, list[list[str]]]:
        stage, asked = candidate_stage(items_mode)
        async with serving(stage) as url:
            app = make_gateway(GATEWAY_CANDIDATE_URL=url)  # the ranker's URL refuses connections
            async with gateway_client(app) as client:
                r = await client.get("/recommend", params={"user": "U1", "k": str(k)})
        assert r.status_code == 200
        assert r.headers["X-Degraded"] == "ranker"
        assert r.headers["X-Model-Version"] == str(VERSION)
        return r.json(), asked

    return asyncio.run(go())


def test_an_answer_in_candidate_order_carries_titles_and_prices(
    make_gateway: Callable[..., FastAPI],
) -> None:
    items, asked = recommend(make_gateway, "ok", k=3)
    assert asked == [["C3", "A1", "B2"]]  # the answer's items only, in one lookup
    assert [i["product"] for i in items] == ["C3", "A1", "B2"]  # stage one's order
    assert [i["score"] for i in items] == [0.9, 0.8, 0.7]
    assert [(i["title"], i["price"], i["category"]) for i in items] == [
        (None, None, None),  # unknown to the catalog: still recommended, without details
        ("Red mug", 2.5, "kitchen"),
        ("Blue mug", 3.0, "kitchen"),
    ]
    assert all("explanation" not in i for i in items)
    assert [i["age"] for i in items] == [31.0] * 3  # the user's, as stage one tells it


def test_only_the_answers_items_are_looked_up(make_gateway: Callable[..., FastAPI]) -> None:
    items, asked = recommend(make_gateway, "ok", k=2)
    assert asked == [["C3", "A1"]]
    assert [i["title"] for i in items] == [None, "Red mug"]


@pytest.mark.parametrize("mode", ["error", "other_version"])
def test_without_details_the_answer_still_goes_out(
    make_gateway: Callable[..., FastAPI], mode: str
) -> None:
    items, asked = recommend(make_gateway, mode, k=3)
    assert len(asked) == 1
    assert [i["product"] for i in items] == ["C3", "A1", "B2"]
    assert all(i["title"] is None and i["price"] is None for i in items)
