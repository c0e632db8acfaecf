"""The ranker's /rank body: read in one pydantic-core pass, refused with FastAPI's 422 shape; and
its compiler closed when the service stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from services.ranker import app as ranker
from services.ranker.native import NativeCompiler
from shared.schemas.serving import RankRequest
from tests.conftest import asgi_post

COLUMNS: dict[str, list[Any]] = {
    "products": ["BANK CHARGES"],
    "scores": [0.5],
    "similarity": [0.0],
    "reasons": ["popular"],
}
STAGE_ONE = {"user": "U1", "version": 7, "known_user": True, "candidates": COLUMNS}

# One reason too many: the columns no longer line up, whatever else is right.
UNEVEN = {**STAGE_ONE, "candidates": {**COLUMNS, "reasons": ["popular"] * 2}}
LIVE = {"products": ["P1"], "counts": [1], "last_ts": [1.7e9]}
LIVE_UNEVEN = {**STAGE_ONE, "live": {**LIVE, "counts": [1, 2]}}
LIVE_ZERO = {**STAGE_ONE, "live": {**LIVE, "counts": [0]}}


@pytest.fixture
def app(bare_service: Callable[[ModuleType], FastAPI]) -> FastAPI:
    return bare_service(ranker)


def post(app: FastAPI, body: bytes) -> httpx.Response:
    return asgi_post(app, "/rank", content=body, headers={"Content-Type": "application/json"})


def test_forwarded_body_is_a_valid_rank_request() -> None:
    body = RankRequest.forward("U1", 3, True, orjson.dumps(STAGE_ONE))
    request = RankRequest.model_validate_json(body)
    assert (request.user, request.k, request.explain, request.version) == ("U1", 3, True, 7)
    assert request.stage_one.candidates.products == ["BANK CHARGES"]
    assert request.stage_one.live is None
    live = RankRequest.forward("U1", 3, True, orjson.dumps({**STAGE_ONE, "live": LIVE}))
    assert RankRequest.model_validate_json(live).stage_one.live is not None


def test_a_valid_body_for_a_version_nobody_published_is_409(app: FastAPI) -> None:
    r = post(app, RankRequest.forward("U1", 3, False, orjson.dumps(STAGE_ONE)))
    assert r.status_code == 409
    assert "version 7" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        (b"{not json", ["body"], "json_invalid"),
        (RankRequest.forward("U1", 0, False, orjson.dumps(STAGE_ONE)), ["body", "k"], None),
        (RankRequest.forward("U1", 3, False, b'{"user": "U1"}'), ["body", "stage_one"], None),
        (RankRequest.forward("U2", 3, False, orjson.dumps(STAGE_ONE)), ["body"], None),
        (RankRequest.forward("U1", 3, False, orjson.dumps(UNEVEN)), ["body", "stage_one"], None),
        (
            RankRequest.forward("U1", 3, False, orjson.dumps(LIVE_UNEVEN)),
            ["body", "stage_one"],
            None,
        ),
        (RankRequest.forward("U1", 3, False, orjson.dumps(LIVE_ZERO)), ["body", "stage_one"], None),
    ],
)
def test_bad_bodies_are_422_with_the_place_and_reason(
    app: FastAPI, body: bytes, loc: list[str], kind: str | None
) -> None:
    r = post(app, body)
    assert r.status_code == 422
    errors: list[dict[str, Any]] = r.json()["detail"]
    assert errors and all(e["loc"][: len(loc)] == loc and e["msg"] for e in errors)
    if kind is not None:
        assert errors[0]["type"] == kind


def test_openapi_documents_the_body(app: FastAPI) -> None:
    schema = app.openapi()
    body = schema["paths"]["/rank"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/RankRequest"}
    components = schema["components"]["schemas"]
    assert {"RankRequest", "CandidateResponse", "CandidateListPayload"} <= components.keys()
    assert "$defs" not in components["RankRequest"]


def test_stopping_the_service_closes_its_compiler(
    bare_service: Callable[[ModuleType], FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[float] = []
    monkeypatch.setattr(NativeCompiler, "close", lambda self, timeout=10.0: closed.append(timeout))
    service = bare_service(ranker)

    async def run() -> None:
        async with service.router.lifespan_context(service):
            assert closed == []  # serving: compiles may run

    asyncio.run(run())
    assert closed == [10.0]  # stopped: the compile in progress ended (see test_native)
