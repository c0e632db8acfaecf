"""The candidate service's edge: its body is read in one pydantic-core pass, bad ones are 422."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.candidate.app import create_app, get_settings
from shared.settings import get_common_settings


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    monkeypatch.setenv("RECSYS_KEY_PREFIX", f"candidate-unit-{uuid.uuid4().hex[:8]}")  # no models
    get_settings.cache_clear()
    get_common_settings.cache_clear()
    yield create_app()
    get_settings.cache_clear()
    get_common_settings.cache_clear()


def post(app: FastAPI, body: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://candidate") as client:
            headers = {"Content-Type": "application/json"}
            return await client.post("/candidates", content=body, headers=headers)

    return asyncio.run(go())


def test_a_valid_body_before_any_model_is_503(app: FastAPI) -> None:
    r = post(app, b'{"user": "U1", "n": 50}')
    assert r.status_code == 503
    assert "no model" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b"{not json", ["body"]),
        (b'{"n": 50}', ["body", "user"]),
        (b'{"user": "U1", "n": 0}', ["body", "n"]),
        (b'{"user": "U1", "n": 2001}', ["body", "n"]),
        (b'{"user": "a b"}', ["body", "user"]),
        (b'{"user": "U1", "filters": {"min_price": 5, "max_price": 1}}', ["body", "filters"]),
        (b'{"user": "U1", "surprise": 1}', ["body", "surprise"]),
    ],
)
def test_bad_bodies_are_422_with_the_place(app: FastAPI, body: bytes, loc: list[str]) -> None:
    r = post(app, body)
    assert r.status_code == 422
    errors: list[dict[str, Any]] = r.json()["detail"]
    assert errors and all(e["loc"][: len(loc)] == loc and e["msg"] for e in errors)


def test_openapi_documents_the_body(app: FastAPI) -> None:
    schema = app.openapi()
    body = schema["paths"]["/candidates"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/CandidateRequest"}
    assert "CandidateRequest" in schema["components"]["schemas"]
